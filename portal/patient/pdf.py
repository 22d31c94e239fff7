"""The patient's report as a PDF (reportlab): final finding, dates, amended marker, the
approved explanation, notes for the patient, the key slice, and the not-a-medical-device note."""
from __future__ import annotations

import io
import logging
from collections.abc import Callable
from xml.sax.saxutils import escape

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from portal.patient.reports import Report
from scans.errors import ScanError
from scans.imaging import render_png

logger = logging.getLogger(__name__)

KEY_SLICE_SIZE_MM = 60


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontSize=11, leading=15)
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontSize=20, leading=24, alignment=0),
        # keepWithNext: a heading never ends a page without the first lines of its section.
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontSize=14, leading=18, spaceBefore=8, keepWithNext=1),
        "finding": ParagraphStyle("finding", parent=body, fontSize=16, leading=21, textColor=colors.HexColor("#0b5394")),
        "body": body,
        "marker": ParagraphStyle("marker", parent=body, textColor=colors.HexColor("#7a4b00")),
    }


def _paragraphs(text: str, style: ParagraphStyle) -> list[Paragraph]:
    """Plain text (blank-line paragraphs, "- " lines) as escaped reportlab paragraphs."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [escape(line) for line in block.strip().split("\n") if line.strip()]
        if lines:
            out.append(Paragraph("<br/>".join(lines), style))
    return out


def _key_slice_image(report: Report) -> Image | None:
    if report.key_slice is None:
        return None
    try:
        png = render_png(report.key_slice, size=512)
    except (ScanError, OSError, ValueError) as exc:
        logger.warning("key slice %s not rendered into the PDF: %s", report.key_slice.pk, exc)
        return None
    side = KEY_SLICE_SIZE_MM * mm
    return Image(io.BytesIO(png), width=side, height=side, kind="proportional")


def _identifiers(report: Report) -> Table:
    """Who and what the report is about, as on any hospital report: name, MRN, date of birth,
    the scan (kind, date) and the institution."""
    patient, study = report.study.patient, report.study
    rows = [
        (_("Patient"), patient.full_name or "—"),
        (_("MRN"), patient.mrn),
        (_("Date of birth"), _date(patient.birth_date) if patient.birth_date else "—"),
        (_("Scan"), report.what_was_scanned),
        (_("Date of the scan"), _date(report.scan_date)),
        (_("Institution"), report.institution or "—"),
    ]
    if study.accession_number:
        rows.append((_("Accession number"), study.accession_number))
    label = ParagraphStyle("id-label", fontName="Helvetica-Bold", fontSize=10, leading=13)
    value = ParagraphStyle("id-value", fontName="Helvetica", fontSize=10, leading=13)
    table = Table([[Paragraph(escape(str(k)), label), Paragraph(escape(str(v)), value)] for k, v in rows],
                  colWidths=[42 * mm, None], hAlign="LEFT")
    table.setStyle(TableStyle([
        ("BOX", (0, 0), (-1, -1), 0.6, colors.HexColor("#8a8a8a")),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f6")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _date(value) -> str:
    if hasattr(value, "tzinfo"):
        value = timezone.localtime(value)
    return formats.date_format(value, "DATE_FORMAT")


def _datetime(value) -> str:
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


def _heading(text: str, styles: dict[str, ParagraphStyle]) -> Paragraph:
    return Paragraph(escape(text), styles["h2"])


def _signature(report: Report, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Title, identifiers, when and by whom it was signed, and the amended marker."""
    story: list[Flowable] = [
        Paragraph(escape(report.title or _("Your MRI report")), styles["title"]), _identifiers(report), Spacer(1, 3 * mm),
    ]
    story.append(Paragraph(escape(_("Report signed: %(date)s") % {"date": _date(report.first_signed_at)}), styles["body"]))
    story.append(Paragraph(escape(_("Signed by %(name)s on %(when)s") % {"name": report.signed_by, "when": _datetime(report.signed_at)}), styles["body"]))
    if report.amended:
        story.append(
            Paragraph(
                escape(_("Amended report (version %(v)d), changed on %(date)s") % {"v": report.review.version, "date": _date(report.signed_at)}),
                styles["marker"],
            )
        )
    return story


def _finding(report: Report, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The signed finding, or the result that the images could not be assessed."""
    if report.assessable:
        return [
            Spacer(1, 4 * mm),
            _heading(_("Finding"), styles),
            Paragraph(escape(_("Final finding: %(label)s") % {"label": report.final_class_label}), styles["finding"]),
        ]
    return [
        Spacer(1, 4 * mm),
        _heading(_("Result"), styles),
        Paragraph(escape(_("Result: %(label)s") % {"label": report.final_class_label}), styles["finding"]),
        Paragraph(escape(_(
            "The images from this visit could not be assessed, so this report gives no result. "
            "Your care team will contact you about what happens next.")), styles["body"]),
    ]


def _texts(report: Report, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The radiologist's report text, the approved explanation (or the headline) and the notes
    for the patient."""
    story: list[Flowable] = []
    if report.report_text:
        story.append(_heading(_("Your radiologist's report"), styles))
        story += _paragraphs(report.report_text, styles["body"])
    story.append(_heading(_("What it means"), styles))
    if report.explanation is not None:
        story += _paragraphs(report.explanation.text, styles["body"])
    else:
        story.append(Paragraph(escape(report.headline), styles["body"]))
        story.append(Paragraph(escape(_("Your doctor will explain this result and what happens next.")), styles["body"]))
    if report.notes:
        story.append(_heading(_("A note from your radiologist"), styles))
        for note in report.notes:
            story += _paragraphs(note.text, styles["body"])
    return story


def _key_slice(report: Report, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    image = _key_slice_image(report)
    if image is None:
        return []
    # The heading and its picture share a page.
    return [KeepTogether([_heading(_("A picture from your scan"), styles), image])]


def _footer_drawer(report: Report) -> Callable[[Canvas, SimpleDocTemplate], None]:
    """Draws the footer of every page: the not-a-medical-device note, the patient and the page."""
    patient = report.study.patient
    who = " · ".join(filter(None, [patient.full_name, _("MRN %(mrn)s") % {"mrn": patient.mrn}]))
    footer = (
        _("Checked and signed by a radiologist. Research software, not a medical device."),
        _("Please discuss any questions with your doctor."),
    )

    def draw_footer(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8.5)
        canvas.setFillColor(colors.HexColor("#4a4a4a"))
        canvas.drawString(document.leftMargin, 12 * mm, footer[0])
        canvas.drawString(document.leftMargin, 8 * mm, footer[1])
        canvas.drawRightString(A4[0] - document.rightMargin, 12 * mm, who)
        canvas.drawRightString(A4[0] - document.rightMargin, 8 * mm, _("Page %(n)d") % {"n": document.page})
        canvas.restoreState()

    return draw_footer


def render_report_pdf(report: Report) -> bytes:
    styles = _styles()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=_("Your MRI report"),
        author=_("Brain MRI portal"),
    )
    story = _signature(report, styles) + _finding(report, styles) + _texts(report, styles) + _key_slice(report, styles)
    draw_footer = _footer_drawer(report)
    doc.build(story, onFirstPage=draw_footer, onLaterPages=draw_footer)
    return buffer.getvalue()
