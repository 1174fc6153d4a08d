// Behaviour every page shares, loaded as a module after htmx.
// Confirm before destructive actions: a form or button with data-confirm="question".
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Times render as UTC on the server; the title shows the reader's local time.
for (const el of document.querySelectorAll("time[datetime]")) {
  const when = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) el.title = when.toLocaleString();
}

// The CSRF token for scripts that post (the editor, the live play view).
export function csrfToken() {
  const attr = document.body.getAttribute("hx-headers");
  try {
    return attr ? JSON.parse(attr)["X-CSRF-Token"] || "" : "";
  } catch {
    return "";
  }
}
