// The run dialog of the flows list and the editor: a "Run…" button loads the flow's run
// form into #run-dialog-body (htmx); once it is there the dialog opens, focused on the
// input. The form posts with htmx: a problem comes back as the form again, with the
// message beside its field; a started play redirects to its page (HX-Redirect).
const dialog = document.getElementById("run-dialog");

if (dialog) {
  document.body.addEventListener("htmx:afterSwap", (event) => {
    const body = document.getElementById("run-dialog-body");
    if (!body || !body.contains(event.target)) return;
    if (!dialog.open) dialog.showModal();
    const invalid = body.querySelector("[aria-invalid=true]");
    const first = invalid || body.querySelector("textarea, input:not([type=hidden])");
    if (first) first.focus();
  });
  dialog.addEventListener("click", (event) => {
    const target = event.target;
    if (target instanceof Element && target.closest("[data-close-dialog]")) dialog.close();
  });
}
