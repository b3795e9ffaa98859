"""insilico: design, run and read an in-silico trial without code.

Start with ``insilico app`` (binds 127.0.0.1) or ``streamlit run app/streamlit_app.py``. The
runs folder is ``$INSILICO_RUNS`` or ``runs`` in the working directory (the CLI's default).
Pages live in ``app/screens/`` (not ``pages/``: Streamlit would also serve those directly,
bypassing this entry) and read like the screen: widgets -> spec -> one ``insilico`` call ->
display; the work is in :mod:`insilico.ui` and the library. Errors are shown as one readable
line (field, value, what is allowed), never as a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from insilico.errors import InsilicoError

HERE = Path(__file__).resolve().parent
log = logging.getLogger("insilico.app")

st.set_page_config(page_title="insilico", page_icon=":material/medication:", layout="wide")

PAGES = {
    "compounds": st.Page(
        str(HERE / "screens" / "compounds.py"), title="Compounds", icon=":material/science:"
    ),
    "cohort": st.Page(
        str(HERE / "screens" / "cohort.py"), title="Cohort", icon=":material/groups:"
    ),
    "design": st.Page(
        str(HERE / "screens" / "design.py"), title="Trial design", icon=":material/edit_note:"
    ),
    "run": st.Page(str(HERE / "screens" / "run.py"), title="Run", icon=":material/play_arrow:"),
    "results": st.Page(
        str(HERE / "screens" / "results.py"), title="Results", icon=":material/monitoring:"
    ),
    "twin": st.Page(
        str(HERE / "screens" / "twin.py"), title="Patient twin", icon=":material/person:"
    ),
    "fit": st.Page(str(HERE / "screens" / "fit.py"), title="Fit", icon=":material/query_stats:"),
}
st.session_state["_pages"] = PAGES
address = str(st.get_option("server.address") or "")
if address not in ("127.0.0.1", "localhost", "::1"):
    st.sidebar.warning(
        f"This server listens on `{address or 'all interfaces'}`: other machines can reach it. "
        "Start it with `insilico app` (127.0.0.1) unless that is intended."
    )
pg = st.navigation(list(PAGES.values()))
try:
    pg.run()
except InsilicoError as exc:
    st.error(str(exc).splitlines()[0])
except Exception as exc:  # noqa: BLE001 - readable message; the traceback goes to the log
    log.exception("page %s failed", pg.title)
    first = str(exc).splitlines()[0] if str(exc) else ""
    st.error(
        f"Something went wrong ({type(exc).__name__}: {first}). Details are in the server log."
    )
