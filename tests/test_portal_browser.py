"""マイナポータル in headless Chromium (the OS's chromium + chromium-driver, driven by Selenium;
nothing downloads a browser): a person logs in with a demo card, sees the inquiry an agency made
seconds earlier with its proof verified, opens あなたの情報 and sees their data fetched from the
agencies and then the fetch's record, and a revoked card is refused. Screenshots are saved to
tests/artifacts/portal/ (git-ignored). Without chromium these tests fail, saying how to install it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from renkei.jpki.card import Card
from renkei.portal.reader import card_response
from tests.grpc_server import RunningBox, start_box
from tests.portal_helpers import (
    CHIYODA,
    PIN,
    YOKOHAMA,
    atena,
    card_path,
    demo_number,
    inquire_about,
    municipal_mid,
    portal_url,
    register_resident,
    send_notice,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "portal"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

if TYPE_CHECKING := False:
    from selenium.webdriver.remote.webdriver import WebDriver


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    b = start_box(tmp_path_factory.mktemp("portal-browser") / "box", persons=0)
    yield b
    rc, out = b.terminate()
    assert rc == 0, out


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("the browser tests need the OS's chromium and chromium-driver: "
                    "apt-get install -y chromium chromium-driver fonts-noto-cjk (or `make install`)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--lang=ja-JP"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(5)  # elements of the page a click leads to
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_url(driver: WebDriver, check: Callable[[str], bool]) -> str:
    """The URL once ``check`` holds (a click's navigation finishes after click() returns)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda d: check(d.current_url))
    return str(driver.current_url)


def _shot(driver: WebDriver, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def _log_in(driver: WebDriver, box: RunningBox, n: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(portal_url(box) + "/login")
    assert driver.find_element(By.TAG_NAME, "h2").text == "マイナンバーカードでログイン"
    message = bytes.fromhex(driver.find_element(By.ID, "message").text.strip())
    with Card(card_path(box, n), box.root / "jpki") as card:  # the card reader, on the person's machine
        answer = card_response(card, PIN, message)
    import json

    # Keyboard only: the textarea is labelled; Tab reaches the button; Enter submits.
    area = driver.find_element(By.CSS_SELECTOR, "label[for=response] + textarea#response")
    area.send_keys(json.dumps(answer))
    area.send_keys(Keys.TAB)
    focused = driver.switch_to.active_element
    assert focused.tag_name == "button" and focused.text == "ログイン"
    focused.send_keys(Keys.ENTER)
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(area))  # the next page is there


def test_log_in_see_the_inquiry_of_seconds_ago_verified_and_read_a_notice(box: RunningBox, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    seq = inquire_about(box, demo_number(box, 1))
    notice = send_notice(box, 1, demo_number(box, 1), "児童手当の手続きのご案内",
                         "児童手当の現況届の提出は不要になりました。\n千代田区 子育て支援課")
    _log_in(browser, box, 1)
    _wait_url(browser, lambda u: u.endswith("/records"))
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-sequence="{seq}"]')
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[2] == "厚生労働大臣" and cells[3] == "千代田区長", cells
    assert cells[5] == "地方税関係情報" and cells[1], cells  # 提供日時 filled in
    assert "✔ 検証済み" in cells[7]
    assert "ppc.renkei.example/witness の副署を確認済み" in browser.find_element(By.ID, "checkpoint").text
    # Every form control has a label.
    for control in browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea"):
        assert browser.find_elements(By.CSS_SELECTOR, f'label[for="{control.get_attribute("id")}"]'), control
    # The session cookie is HttpOnly: no script can read it.
    assert "portal_session" not in browser.execute_script("return document.cookie")
    _shot(browser, "records")

    # Filter by agency from the form (no JavaScript involved: a GET form).
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "agency")).select_by_visible_text("千代田区長")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    _wait_url(browser, lambda u: "agency=1" in u)
    assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-sequence="{seq}"]')

    # お知らせ: the mayor's notice, unread, then opened (and read).
    browser.find_element(By.LINK_TEXT, "お知らせ").click()
    unread = browser.find_element(By.CSS_SELECTOR, f'tr[data-notice="{notice}"]')
    assert unread.get_attribute("class") == "unread" and "未読" in unread.text and "千代田区長" in unread.text
    _shot(browser, "notices")
    unread.find_element(By.LINK_TEXT, "児童手当の手続きのご案内").click()
    assert browser.find_element(By.ID, "notice-title").text == "児童手当の手続きのご案内"
    assert "現況届" in browser.find_element(By.ID, "notice-body").text
    _shot(browser, "notice")
    browser.find_element(By.LINK_TEXT, "お知らせの一覧に戻る").click()
    assert browser.find_element(By.CSS_SELECTOR, f'tr[data-notice="{notice}"]').get_attribute("class") == "read"

    # Log out: back at the login page, the records no longer open.
    browser.find_element(By.XPATH, "//button[text()='ログアウト']").click()
    _wait_url(browser, lambda u: u.endswith("/login"))
    browser.get(portal_url(box) + "/records")
    assert browser.current_url.endswith("/login")


def _log_out(driver: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, "//button[text()='ログアウト']").click()
    _wait_url(driver, lambda u: u.endswith("/login"))


def test_delegate_view_as_agent_and_revoke(box: RunningBox, browser: WebDriver) -> None:
    import datetime as dt

    from selenium.webdriver.common.by import By

    seq = inquire_about(box, demo_number(box, 1))
    # The principal (card 1) delegates viewing of やりとり履歴 to someone they call 母.
    _log_in(browser, box, 1)
    browser.find_element(By.LINK_TEXT, "代理人").click()
    browser.find_element(By.ID, "label").send_keys("母")
    until = browser.find_element(By.ID, "valid_until")
    browser.execute_script("arguments[0].value = arguments[1]", until,
                           (dt.date.today() + dt.timedelta(days=30)).isoformat())
    browser.find_element(By.XPATH, "//button[text()='代理人コードを発行する']").click()
    code = browser.find_element(By.ID, "offer-code").text.strip()
    did = browser.find_element(By.CSS_SELECTOR, "tr[data-delegation]").get_attribute("data-delegation")
    assert code and "承諾待ち" in browser.find_element(By.CSS_SELECTOR, f'tr[data-delegation="{did}"]').text
    _shot(browser, "delegation-offered")
    _log_out(browser)

    # The agent (card 2) accepts the code and reads the principal's records, proofs verified.
    _log_in(browser, box, 2)
    browser.find_element(By.LINK_TEXT, "代理人").click()
    browser.find_element(By.ID, "code").send_keys(code)
    browser.find_element(By.XPATH, "//button[text()='代理人になる']").click()
    browser.find_element(By.CSS_SELECTOR, f'li[data-agent-delegation="{did}"]').find_element(
        By.LINK_TEXT, "やりとり履歴を見る").click()
    assert "代理人として閲覧しています" in browser.find_element(By.ID, "acting").text
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-sequence="{seq}"]')
    assert "✔ 検証済み" in row.text
    _shot(browser, "agent-records")
    _log_out(browser)

    # The principal revokes alone and reads the 操作履歴 (the agent's view is in it).
    _log_in(browser, box, 1)
    browser.find_element(By.LINK_TEXT, "代理人").click()
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-delegation="{did}"] button').click()
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    # The revocation posts and the page reloads: wait for the old document to go, then for the
    # row (chromium reports a node of the old document as "does not belong to the document",
    # not as a stale element, while the new one loads).
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(page))
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda d: "取消済み" in d.find_element(By.CSS_SELECTOR, f'tr[data-delegation="{did}"]').text)
    browser.find_element(By.LINK_TEXT, "操作履歴").click()
    actions = [r.get_attribute("data-action") for r in browser.find_elements(By.CSS_SELECTOR, "tr.op")]
    assert actions[:4] == ["revoke", "view_records", "accept", "delegate"], actions
    assert "やりとり履歴を閲覧" in browser.find_element(By.TAG_NAME, "table").text
    _shot(browser, "operations")
    _log_out(browser)

    # The agent's link is gone and the page refuses.
    _log_in(browser, box, 2)
    browser.get(portal_url(box) + f"/delegation/{did}/records")
    assert "この代理権では閲覧できません" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text


def test_an_app_asks_for_consent(box: RunningBox, browser: WebDriver) -> None:
    import base64
    import json
    from urllib.parse import parse_qs, urlencode, urlsplit

    from selenium.webdriver.common.by import By

    from renkei.portal.oauth import s256

    redirect = "http://127.0.0.1:8123/callback"  # nothing listens: the browser's URL is what counts
    out = subprocess.run([sys.executable, "-m", "renkei.cli", "portal", "add-client", "--data-dir",
                          str(box.root / "portal"), "--name", "家計簿アプリ", "--redirect-uri", redirect],
                         check=True, capture_output=True, text=True).stdout
    client_id = json.loads(out)["client_id"]
    verifier = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                       "scope": "records notices", "state": "s1", "code_challenge": s256(verifier),
                       "code_challenge_method": "S256"})
    _log_in(browser, box, 1)
    browser.get(portal_url(box) + "/oauth/authorize?" + query)
    assert browser.find_element(By.ID, "app-name").text == "家計簿アプリ"
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#scopes li")] == [
        "やりとり履歴（情報提供等記録）", "お知らせ"]
    _shot(browser, "consent")
    browser.find_element(By.XPATH, "//button[text()='許可する']").click()
    got = urlsplit(_wait_url(browser, lambda u: u.startswith(redirect)))
    assert f"{got.scheme}://{got.netloc}{got.path}" == redirect and parse_qs(got.query)["code"]


def test_apply_online_with_the_signature_certificate_and_follow_the_status(box: RunningBox,
                                                                          browser: WebDriver) -> None:
    import json
    import re

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb
    from renkei.jpki.demo import DEMO_SIGN_PIN
    from renkei.portal.reader import sign_response

    register_resident(box, 1)
    _log_in(browser, box, 1)
    browser.find_element(By.LINK_TEXT, "申請").click()
    Select(browser.find_element(By.ID, "child-allowance-claim-municipality")).select_by_visible_text("千代田区長")
    browser.find_element(By.ID, "child-allowance-claim-child_name").send_keys("デモ 一郎")
    birth = browser.find_element(By.ID, "child-allowance-claim-child_birth")
    browser.execute_script("arguments[0].value = arguments[1]", birth, "2024-05-01")
    browser.find_element(By.ID, "child-allowance-claim-relationship").send_keys("子")
    browser.find_element(By.ID, "child-allowance-claim-bank_account").send_keys("デモ銀行 千代田支店 普通 1234567")
    for control in browser.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea"):
        assert browser.find_elements(By.CSS_SELECTOR, f'label[for="{control.get_attribute("id")}"]'), control
    _shot(browser, "apply-form")
    browser.find_element(By.XPATH, "//button[text()='申請書を作成する']").click()

    # The card reader signs exactly the document shown, with the 署名用 key.
    document = browser.find_element(By.ID, "document").text.encode()
    assert json.loads(document)["fields"]["child_name"] == "デモ 一郎"
    with Card(card_path(box, 1), box.root / "jpki") as card:
        answer = sign_response(card, DEMO_SIGN_PIN, document)
    browser.find_element(By.CSS_SELECTOR, "label[for=response] + textarea#response").send_keys(json.dumps(answer))
    _shot(browser, "apply-sign")
    browser.find_element(By.XPATH, "//button[text()='署名して申請する']").click()
    url = _wait_url(browser, lambda u: "/applications?submitted=" in u)
    m = re.search(r"submitted=1-(\d+)", url)
    assert m and "申請を受け付けました" in browser.find_element(By.ID, "submitted").text
    app_id = int(m.group(1))
    section = f'section[data-id="1-{app_id}"]'
    assert browser.find_element(By.CSS_SELECTOR, section).get_attribute("data-status") == "受付"

    # 千代田区 fetches the income from 横浜市 for this application and decides it.
    mid = municipal_mid(box, CHIYODA)
    ans = mid.Inquire(ipb.MidInquireRequest(
        integrated_address_number=atena(CHIYODA, 1), affair="B2.74", provider_agency_id=YOKOHAMA,
        items=["local_tax_info"], conditions=ipb.InquiryConditions(fiscal_year=2025), application_id=app_id),
        timeout=30)
    mid.UpdateApplication(ipb.UpdateApplicationRequest(application_id=app_id, status="決定",
                                                       note="令和8年2月分から支給します。"), timeout=30)
    browser.find_element(By.LINK_TEXT, "申請状況").click()
    done = browser.find_element(By.CSS_SELECTOR, section)
    assert done.get_attribute("data-status") == "決定" and "令和8年2月分から支給します。" in done.text
    row = done.find_element(By.CSS_SELECTOR, f'tr[data-seq="{ans.inquiry_record_sequence}"]')
    assert "横浜市長" in row.text and "地方税関係情報" in row.text and "✔ 検証済み" in row.text
    _shot(browser, "applications")


def test_open_anata_no_joho_see_the_fetched_data_then_its_record_verified(box: RunningBox,
                                                                         browser: WebDriver) -> None:
    """あなたの情報: the portal fetches the person's own data from the agencies as its own agency
    (keyboard only), shows it in Japanese, and the fetch is in やりとり履歴 with its proof verified."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    register_resident(box, 2)  # 千代田区 and 横浜市 hold them; 横浜市 has their 地方税 副本
    _log_in(browser, box, 2)
    browser.find_element(By.LINK_TEXT, "あなたの情報").click()
    _wait_url(browser, lambda u: u.endswith("/myinfo"))
    boxes = browser.find_elements(By.CSS_SELECTOR, "#myinfo-form input[type=checkbox]")
    assert len(boxes) == 4 and all(b.is_selected() for b in boxes)
    for control in boxes:  # each labelled with the agency and the information, in Japanese
        label = browser.find_element(By.CSS_SELECTOR, f'label[for="{control.get_attribute("id")}"]').text
        assert "：" in label and "情報" in label, label
    # Keyboard only: leave out 全国健康保険協会 (Space on its checkbox), then Enter on the button.
    insurer = browser.find_element(By.ID, "src-a5")
    insurer.send_keys(Keys.SPACE)
    assert not insurer.is_selected()
    button = browser.find_element(By.XPATH, "//button[text()='照会する']")
    button.send_keys(Keys.ENTER)
    WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.ID, "myinfo-results")))
    states = {b.get_attribute("data-provider"): b.get_attribute("data-state")
              for b in browser.find_elements(By.CSS_SELECTOR, "#myinfo-results [data-state]")}
    assert states == {"1": "no_data", "2": "provided", "3": "not_holding"}, states
    yokohama = browser.find_element(By.CSS_SELECTOR, '#myinfo-results [data-provider="2"]')
    assert "提供あり" in yokohama.text and "提供元の電子署名を確認済み" in yokohama.text
    assert "総所得金額" in yokohama.text and "4200000" in yokohama.text and "2025年度" in yokohama.text
    assert "提供元不在" in browser.find_element(By.CSS_SELECTOR, '#myinfo-results [data-provider="3"]').text
    assert demo_number(box, 2) not in browser.page_source
    seq = yokohama.text.split("照会記録 #", 1)[1].split("、", 1)[0]
    browser.execute_script("arguments[0].scrollIntoView()", yokohama)  # the data on the screenshot
    _shot(browser, "myinfo")

    # The fetch is a record of the person's やりとり履歴, the portal as 照会機関, proof verified.
    browser.find_element(By.LINK_TEXT, "この照会の記録をやりとり履歴で見る").click()
    _wait_url(browser, lambda u: u.endswith("/records"))
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-sequence="{seq}"]')
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[2] == "マイナポータル（デジタル庁）" and cells[3] == "横浜市長", cells
    assert "自己情報表示" in cells[4] and cells[5] == "地方税関係情報、住民票関係情報" and cells[1], cells
    assert "✔ 検証済み" in cells[7]
    _shot(browser, "myinfo-records")
    _log_out(browser)


def test_a_revoked_card_is_refused(box: RunningBox, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    with Card(card_path(box, 3), box.root / "jpki") as card:
        card_id = card.card_id
    subprocess.run([sys.executable, "-m", "renkei.cli", "jpki", "revoke", "--data-dir", str(box.root / "jpki"),
                    "--card-id", card_id, "--reason", "keyCompromise"], check=True, capture_output=True)
    _log_in(browser, box, 3)
    alert = browser.find_element(By.CSS_SELECTOR, "[role=alert]")
    assert "このカードの利用者証明用電子証明書は失効しています" in alert.text
    assert "紛失・盗難の届出により失効しています" in alert.text
    _shot(browser, "revoked")
