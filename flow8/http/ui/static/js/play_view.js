// The live play view: listens to the play's events on /ws and, on each, fetches the
// server-rendered fragments again (the summary on play events, the steps on every event),
// so what the page shows is always what the server renders. Screen readers hear each
// change through the #play-live status region.
const view = document.getElementById("play-view");

const LAYER_WORDS = {
  "play:layer:started": "started",
  "play:layer:completed": "finished",
  "play:layer:failed": "failed",
};
const PLAY_WORDS = {
  "play:started": "Play running",
  "play:waiting": "Play waiting",
  "play:completed": "Play finished",
  "play:failed": "Play ended",
};

function isFinal() {
  const summary = view.querySelector("#play-summary .summary");
  return summary !== null && summary.dataset.final === "true";
}

function announce(text) {
  const live = document.getElementById("play-live");
  if (live) live.textContent = text;
}

// Steps that have started and not ended, from their events: an idempotent step's RUN is
// announced but not stored, so the rendered steps lack it until it ends. Each is shown with
// the #layer-running-row template after the stored steps, until its end event (or a stored
// row for it) arrives.
const running = new Map();

function layerId(data) {
  return `${data.ref}|${(data.iteration || []).join(",")}`;
}

function showRunning() {
  const layers = document.querySelector("#play-layers .layers");
  const template = document.getElementById("layer-running-row");
  if (!layers || !template || layers.dataset.lastPage !== "true") return;
  const table = layers.querySelector(".layers-table");
  const body = table && table.querySelector("tbody");
  if (!body) return;
  const shown = new Set(
    [...body.querySelectorAll("tr.layer")].map(
      (row) => `${row.dataset.ref}|${row.dataset.iteration || ""}`,
    ),
  );
  for (const [id, data] of running) {
    if (shown.has(id)) {
      running.delete(id); // stored now: the server's row says what it is
      continue;
    }
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.ref = data.ref;
    row.dataset.iteration = (data.iteration || []).join(",");
    row.dataset.running = "true";
    row.querySelector(".layer-ref").textContent = data.ref;
    row.querySelector(".layer-iteration").textContent = data.iteration && data.iteration.length
      ? `[${data.iteration.join(", ")}]`
      : "";
    row.querySelector(".layer-module").textContent = data.appId || "";
    row.querySelector(".layer-attempts").textContent = String(data.attempt || 1);
    body.appendChild(row);
  }
  if (body.querySelector("tr.layer")) {
    table.hidden = false;
    const empty = layers.querySelector(".empty");
    if (empty) empty.hidden = true;
  }
}

// One fetch of a fragment at a time; events arriving meanwhile ask for one more fetch.
function refresher(targetSelector, urlOf, afterSwap = () => {}) {
  let running = false;
  let again = false;
  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        const target = document.querySelector(targetSelector);
        if (!target || !window.htmx) return;
        // Keep the details a reader opened open across the swap.
        const open = [...target.querySelectorAll("details[open][id]")].map((d) => d.id);
        await window.htmx.ajax("GET", urlOf(target), { target, swap: "innerHTML" });
        afterSwap();
        for (const id of open) {
          const details = document.getElementById(id);
          if (details) details.open = true;
        }
      } while (again);
    } catch {
      // The next event (or reconnection) fetches again.
    } finally {
      running = false;
    }
  }
  return refresh;
}

const refreshSummary = refresher("#play-summary", () => view.dataset.summaryUrl);
const refreshLayers = refresher("#play-layers", (target) => {
  const layers = target.querySelector("[data-refresh-url]");
  return layers ? layers.dataset.refreshUrl : `/plays/${view.dataset.playId}/layers`;
}, showRunning);

function onEvent(message) {
  if (message.type === "subscribed") {
    // Anything that happened between the page's render and now.
    refreshSummary();
    refreshLayers();
    return;
  }
  if (message.type === "error") {
    showConnection(`Live updates unavailable: ${message.message || message.error}`);
    return;
  }
  if (message.type === "subscriber:dropped") {
    refreshSummary();
    refreshLayers();
    return;
  }
  if (message.type in LAYER_WORDS) {
    const data = message.data || {};
    announce(`Step ${data.ref || ""} ${LAYER_WORDS[message.type]}`);
    if (data.ref !== undefined) {
      if (message.type === "play:layer:started") {
        running.set(layerId(data), data);
        showRunning();
      } else {
        running.delete(layerId(data));
      }
    }
    refreshLayers();
  } else if (message.type in PLAY_WORDS) {
    const state = message.data && message.data.state;
    announce(state ? `${PLAY_WORDS[message.type]}: ${state}` : PLAY_WORDS[message.type]);
    if (message.type !== "play:started") running.clear(); // waiting or ended: nothing runs
    refreshSummary();
    refreshLayers();
  }
}

function showConnection(text) {
  const note = document.getElementById("play-connection");
  if (!note) return;
  note.textContent = text;
  note.hidden = !text;
}

let socket = null;
let retries = 0;

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}/ws`);
  socket.addEventListener("open", () => {
    retries = 0;
    showConnection("");
    socket.send(JSON.stringify({ action: "subscribe", playId: view.dataset.playId }));
  });
  socket.addEventListener("message", (frame) => {
    let message;
    try {
      message = JSON.parse(frame.data);
    } catch {
      return;
    }
    onEvent(message);
  });
  socket.addEventListener("close", (closed) => {
    socket = null;
    // Refused (4401, 4403) or the play has ended: nothing more will come.
    if (closed.code >= 4000 || isFinal()) return;
    retries += 1;
    if (retries > 8) {
      showConnection("Live updates stopped: reload the page to see changes.");
      return;
    }
    showConnection("Live updates interrupted: reconnecting…");
    window.setTimeout(connect, Math.min(500 * 2 ** retries, 15000));
  });
}

if (view) {
  connect();
  window.addEventListener("pagehide", () => {
    if (socket) socket.close(1000);
  });
}
