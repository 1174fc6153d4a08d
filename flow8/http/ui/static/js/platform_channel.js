// The channel form: the settings of the chosen auth mode are active, the others dimmed
// (their fields are not sent for another mode; see _channel_pages.py).
const mode = document.getElementById("f-authMode");
function show() {
  for (const set of document.querySelectorAll("fieldset[data-auth]")) {
    set.classList.toggle("inactive", set.dataset.auth !== mode.value);
  }
}
if (mode) mode.addEventListener("change", show);
