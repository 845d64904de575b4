"""The one-stop forms as PDF documents (Thông tư 01/2018/TT-VPCP, Mẫu 01-05).

Templates (titles, labels, texts) live in ``config/forms/*.yaml``; this package fills them from the
dossier's rows and draws an A5 page with DejaVu fonts (every Vietnamese diacritic), the dossier
code as a Code 128 barcode and a QR code linking to the dossier's status page. Files are stored
under ``<var_dir>/forms/<dossier code>/``.
"""

from lienthong.forms.context import FORMS, form_context
from lienthong.forms.render import FormSettings, render_form, render_pdf

__all__ = ["FORMS", "FormSettings", "form_context", "render_form", "render_pdf"]
