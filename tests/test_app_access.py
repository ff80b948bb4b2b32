"""The Streamlit app served beyond loopback (``LINQRAG_APP_EXPOSED=1``, what ``python -m app serve
--host 0.0.0.0`` sets), under ``AppTest`` on a real index: no page before the password, folders
only under the allowed roots, the server's OpenAI key only for the server's own base URL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, topics_index_dir) -> Path:
    """A copy of the session's topics index: the app writes its last choice into the index folder."""
    folder = tmp_path_factory.mktemp("access-index") / "index"
    shutil.copytree(topics_index_dir, folder)
    return folder


@pytest.fixture()
def exposed(index_dir, monkeypatch):
    monkeypatch.setenv("LINQRAG_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("LINQRAG_APP_EXPOSED", "1")
    monkeypatch.setenv("LINQRAG_APP_PASSWORD", PASSWORD)
    for name in ("LINQRAG_APP_ALLOW_UNAUTHENTICATED", "LINQRAG_APP_ROOTS", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def started() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    return at


def signed_in() -> AppTest:
    at = started()
    at.text_input(key="login_password").set_value(PASSWORD).run()
    assert not at.exception, at.exception
    return at


def nothing_but_the_login(at: AppTest) -> None:
    assert [w.key for w in at.text_input] == ["login_password"]
    assert at.text_input(key="login_password").proto.type == at.text_input(key="login_password").proto.PASSWORD
    assert not at.sidebar.radio and not at.sidebar.selectbox and not at.chat_input and not at.dataframe
    assert [t.value for t in at.title] == ["linqrag"]


def test_no_page_renders_before_the_password_and_the_right_one_opens_chat(exposed):
    at = started()
    nothing_but_the_login(at)
    at.text_input(key="login_password").set_value("wrong horse").run()
    nothing_but_the_login(at)
    assert [e.value for e in at.error] == ["Wrong password."]

    at.text_input(key="login_password").set_value(PASSWORD).run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="page").value == "Chat"
    assert [t.value for t in at.title] == ["Chat with your documents"] and at.chat_input
    assert at.sidebar.selectbox(key="corpus").value == "topics"
    at.sidebar.radio(key="page").set_value("Compare").run()  # remembered for the session: no second login
    assert not at.exception and "login_password" not in [w.key for w in at.text_input]


def test_an_exposed_app_without_a_password_serves_nothing(exposed):
    exposed.delenv("LINQRAG_APP_PASSWORD")
    at = started()
    assert not at.text_input and not at.sidebar.radio
    assert "no password is set: set LINQRAG_APP_PASSWORD" in at.error[0].value


def test_a_loopback_app_asks_for_nothing(index_dir, monkeypatch):
    monkeypatch.setenv("LINQRAG_INDEX_DIR", str(index_dir))
    for name in ("LINQRAG_APP_EXPOSED", "LINQRAG_APP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    at = started()
    assert at.sidebar.radio(key="page").value == "Chat" and "login_password" not in [w.key for w in at.text_input]


def test_the_index_page_indexes_only_folders_under_the_allowed_roots(exposed, tmp_path):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "notes").mkdir(parents=True)
    outside.mkdir()
    (allowed / "sneaky").symlink_to(outside, target_is_directory=True)

    at = signed_in()
    at.sidebar.radio(key="page").set_value("Index").run()
    at.radio(key="index_source").set_value("A folder on this machine").run()
    at.text_input(key="index_folder").set_value(str(allowed / "notes")).run()
    assert any("unless LINQRAG_APP_ROOTS names the folders allowed" in e.value for e in at.error), at.error

    exposed.setenv("LINQRAG_APP_ROOTS", str(allowed))
    at.run()
    assert not at.error, [e.value for e in at.error]
    for refused in (outside, allowed / "sneaky", allowed / ".." / "outside", Path("/etc")):
        at.text_input(key="index_folder").set_value(str(refused)).run()
        assert any(e.value.startswith(f"Only folders under {allowed.resolve()}") for e in at.error), refused
        at.button(key="build").click().run()
        assert not at.success and not at.exception  # nothing was built


def test_a_typed_base_url_gets_no_server_key_and_the_configured_one_does(exposed):
    exposed.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    at = signed_in()
    at.sidebar.selectbox(key="generator").set_value("openai").run()
    captions = [c.value for c in at.sidebar.caption]
    assert "The API key is read from OPENAI_API_KEY in the server's environment." in captions
    at.sidebar.text_input(key="base_url").set_value("https://collector.example/v1").run()
    captions = [c.value for c in at.sidebar.caption]
    assert any(c.startswith("No API key is sent to this URL") for c in captions), captions


def test_key_env_and_folder_rules(monkeypatch, tmp_path):
    from app.access import folder_refusal, key_env_for

    monkeypatch.delenv("LINQRAG_APP_ROOTS", raising=False)
    monkeypatch.delenv("LINQRAG_APP_EXPOSED", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.example/v1/")
    assert key_env_for("http://anything/v1") == "OPENAI_API_KEY" and folder_refusal(tmp_path) is None  # loopback
    monkeypatch.setenv("LINQRAG_APP_EXPOSED", "1")
    assert key_env_for("https://API.example/v1") == "OPENAI_API_KEY"
    assert key_env_for("https://api.example.evil/v1") is None
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert key_env_for("https://api.example/v1") is None
    assert "LINQRAG_APP_ROOTS" in folder_refusal(tmp_path)
