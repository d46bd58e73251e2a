"""The reader's own documents in a real browser: a DOCX uploaded, indexed and then cited; files the server refuses
(a corrupt PDF, an empty file, 60 MB, an unsupported type) each named with a reason while nothing else is lost; and
another browser never sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import needs_minilm
from app_steps import ask, open_source, shot, sidebar, upload, wait_idle
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, needs_minilm]

LEASE = [  # a made-up lease, longer than the API quotes whole (160 characters): the card marks one clause of it
    "房屋租赁合同",
    "第一条 承租人应当于每月五日前向出租人支付租金人民币八千元，以银行转账方式支付至出租人指定的账户。",
    "第二条 承租人逾期支付租金超过十五日的，出租人有权解除本合同，并要求承租人支付违约金人民币两万元。",
    "第三条 租赁期满后承租人应当将房屋钥匙交还出租人，押金在交还钥匙并结清水电费用后七日内退还。",
    "第四条 未经出租人书面同意，承租人不得转租房屋，也不得改变房屋的结构和用途。",
]
LEASE_QUESTION = "承租人逾期支付租金超过十五日，违约金是多少？"
INDEXED_S = 120_000  # ms: ingest, chunk and embed a small file on a loaded machine


def lease_docx(folder: Path) -> Path:
    from docx import Document

    doc = Document()
    for paragraph in LEASE:
        doc.add_paragraph(paragraph)
    path = folder / "租赁合同.docx"
    doc.save(str(path))
    return path


def documents_panel(page: Page):
    return sidebar(page).locator('[data-testid="stExpander"]', has_text="Your documents")


def test_an_uploaded_docx_is_indexed_then_cited_and_private(new_page, tmp_path: Path) -> None:
    page: Page = new_page()
    upload(page, lease_docx(tmp_path))
    panel = documents_panel(page)
    expect(panel.get_by_text("Uploaded: 租赁合同.docx")).to_be_visible()
    expect(panel.get_by_text("租赁合同.docx · ready")).to_be_visible(timeout=INDEXED_S)
    expect(sidebar(page).get_by_role("switch", name="Search my documents too")).to_be_checked()  # on by itself
    shot(page, "07-docx-indexed", panel)

    ask(page, LEASE_QUESTION)
    card = open_source(page, 1)
    expect(card).to_contain_text("your document")
    mark = card.locator("mark")
    expect(mark).to_contain_text("违约金人民币两万元")
    expect(mark).not_to_contain_text("第一条")  # the clause, inside its passage, not the whole passage
    expect(card).to_contain_text("第一条")
    shot(page, "08-docx-cited", card)

    other: Page = new_page()  # another browser: another owner
    expect(documents_panel(other).get_by_text("No documents yet.")).to_be_visible()
    expect(documents_panel(other).get_by_text("租赁合同.docx")).to_have_count(0)
    sidebar(other).get_by_text("Search my documents too", exact=True).click()
    wait_idle(other)
    ask(other, LEASE_QUESTION)
    expect(other.locator(".dossier-card", has_text="your document")).to_have_count(0)
    expect(other.get_by_text("违约金人民币两万元")).to_have_count(0)


def bad_files(folder: Path) -> dict[str, Path]:
    files = {"corrupt.pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a PDF body\n",
             "empty.txt": b"", "program.exe": b"MZ\x90\x00\x03" + bytes(200)}
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    big = folder / "huge.txt"
    with big.open("wb") as f:  # 60 MB of text: over the server's upload limit (50 MB by default)
        line = "第一条 这是一份很大的文件，用来检查上传的大小限制。\n".encode()
        f.write(line * (60 * 1024 * 1024 // len(line) + 1))
    paths["huge.txt"] = big
    return paths


def test_refused_files_are_each_named_with_a_reason_and_nothing_else_is_lost(new_page, tmp_path: Path) -> None:
    page: Page = new_page()
    good = tmp_path / "notes.md"
    good.write_text("# 备忘\n\n会议定于三月十日举行，地点在第二会议室。\n", encoding="utf-8")
    upload(page, good)
    panel = documents_panel(page)
    expect(panel.get_by_text("notes.md · ready")).to_be_visible(timeout=INDEXED_S)
    ask(page, "故意杀人罪判几年？")

    bad = bad_files(tmp_path)
    upload(page, *bad.values())
    for name in bad:
        refused = panel.get_by_role("alert").filter(has_text=name)  # an error box; a success box is a "status"
        expect(refused.first).to_be_visible(timeout=INDEXED_S)  # refused at upload, or failed while indexing
    expect(panel).to_contain_text("too large")
    expect(panel).to_contain_text("not a supported type")
    shot(page, "09-refused-files", panel)

    expect(panel.get_by_text("notes.md · ready")).to_be_visible()  # the good file stays
    expect(page.get_by_role("button", name="[1] ", exact=False).first).to_be_visible()  # so does the answer
