// The flow editor: the flow's steps as lanes (steps sharing an `index` run in parallel),
// each with a form generated from its module's JSON Schema, filters, retry, timeout,
// approval and component choice. Save serialises the steps to the flow's JSON (the shape
// POST /api/flows takes) and posts it; the server answers {id, version} or 422 with the
// problems by field ("flowlets[2].args.url"), each shown beside the field it names.
import { csrfToken } from "./ui.js";

const data = JSON.parse(document.getElementById("editor-data").textContent);
const form = document.getElementById("flow-editor");
const readOnly = Boolean(data.readOnly);
const modules = new Map(data.modules.map((m) => [m.appId, m]));
const OPERATORS = ["eq", "neq", "gt", "gte", "lt", "lte", "contains", "not_contains",
  "is_empty", "not_empty", "regex"];
const CASTS = ["", "string", "number", "boolean"];
const RETRY_FIELDS = [
  ["count", "Retries", 0],
  ["delayMs", "Delay (ms)", 1000],
  ["backoffMultiplier", "Backoff ×", 2],
  ["maxDelayMs", "Max delay (ms)", 300000],
];

let nextKey = 1;
const definition = structuredClone(data.definition);
const explicitIndex = definition.flowlets.some((f) => f.index !== null && f.index !== undefined);
const steps = definition.flowlets.map((f, i) => toStep(f, explicitIndex ? (f.index ?? i) : i));

// -- the model ---------------------------------------------------------------------------

function schemaProps(appId) {
  const schema = modules.get(appId)?.argsSchema || {};
  return { props: schema.properties || {}, required: new Set(schema.required || []) };
}

function kindOf(schema) {
  const type = Array.isArray(schema.type) ? null : schema.type;
  if (schema.enum && schema.enum.every((v) => typeof v === "string")) return "enum";
  if (type === "string") return "string";
  if (type === "boolean") return "boolean";
  if (type === "number" || type === "integer") return "number";
  return "json";
}

// A value as the text its field shows: strings as typed, anything else as JSON (a string
// that would read back as another JSON value is shown quoted, so it stays a string).
function asText(value, kind) {
  if (value === undefined || value === null) return "";
  if (kind === "string" || kind === "enum") return typeof value === "string" ? value : JSON.stringify(value);
  if (kind === "boolean") return value === true ? "true" : value === false ? "false" : String(value);
  if (typeof value === "string") {
    if (kind === "number" && value.includes("{{")) return value;
    try {
      JSON.parse(value);
      return JSON.stringify(value);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, kind === "json" && typeof value === "object" ? 2 : 0);
}

// The text of a field as the value it stands for; undefined leaves the argument out.
function fromText(text, kind) {
  if (text === "") return undefined;
  if (kind === "string" || kind === "enum") return text;
  if (kind === "boolean") return text === "true" ? true : text === "false" ? false : text;
  try {
    return JSON.parse(text);
  } catch {
    return text; // text, or an expression such as {{ $prev.order.total }}
  }
}

function toStep(flowlet, index) {
  const { props } = schemaProps(flowlet.appId);
  const args = { ...(flowlet.args || {}) };
  const argText = {};
  for (const [name, schema] of Object.entries(props)) {
    argText[name] = asText(args[name], kindOf(schema));
    delete args[name];
  }
  return {
    key: nextKey++,
    original: flowlet,
    ref: flowlet.ref || "",
    name: flowlet.name && flowlet.name !== flowlet.ref ? flowlet.name : "",
    appId: flowlet.appId,
    index,
    argText,
    extraText: Object.keys(args).length ? JSON.stringify(args, null, 2) : "",
    filters: (flowlet.filters || []).map((f) => ({
      left: asText(f.leftValue, "json"),
      operator: f.operator || "eq",
      right: asText(f.rightValue, "json"),
      cast: f.cast || "",
      mode: f.mode || "and",
    })),
    retry: { ...(flowlet.retry || {}) },
    timeout: flowlet.timeout ?? "",
    needsApproval: Boolean(flowlet.needsApproval),
    components: { ...(flowlet.componentConfigIds || {}) },
  };
}

function sortSteps() {
  const order = new Map(steps.map((s, i) => [s, i]));
  steps.sort((a, b) => a.index - b.index || order.get(a) - order.get(b));
}

class ClientProblem extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

function serialise() {
  sortSteps();
  const sequential = steps.every((s, i) => s.index === i);
  const flowlets = steps.map((step, i) => {
    const at = `flowlets[${i}]`;
    const { props } = schemaProps(step.appId);
    let args = {};
    if (step.extraText.trim()) {
      try {
        args = JSON.parse(step.extraText);
      } catch (error) {
        throw new ClientProblem(`${at}.args`, `other arguments: not JSON (${error.message})`);
      }
      if (typeof args !== "object" || args === null || Array.isArray(args)) {
        throw new ClientProblem(`${at}.args`, "other arguments must be a JSON object");
      }
    }
    for (const [name, schema] of Object.entries(props)) {
      const value = fromText(step.argText[name] ?? "", kindOf(schema));
      if (value !== undefined) args[name] = value;
    }
    const flowlet = { ...step.original, ref: step.ref, appId: step.appId, args };
    if (step.name) flowlet.name = step.name;
    else delete flowlet.name;
    if (sequential) delete flowlet.index;
    else flowlet.index = step.index;
    flowlet.filters = step.filters.map((f) => {
      const out = { leftValue: fromText(f.left, "json") ?? null, operator: f.operator };
      if (!["is_empty", "not_empty"].includes(f.operator)) out.rightValue = fromText(f.right, "json") ?? null;
      if (f.cast) out.cast = f.cast;
      out.mode = f.mode;
      return out;
    });
    const retry = {};
    for (const [name, , fallback] of RETRY_FIELDS) {
      const text = String(step.retry[name] ?? "").trim();
      retry[name] = text === "" ? fallback : Number(text);
    }
    retry.jitter = Boolean(step.retry.jitter);
    flowlet.retry = retry;
    const timeout = String(step.timeout).trim();
    flowlet.timeout = timeout === "" ? null : Number(timeout);
    flowlet.needsApproval = step.needsApproval;
    flowlet.componentConfigIds = Object.fromEntries(
      Object.entries(step.components).filter(([, id]) => id),
    );
    return flowlet;
  });
  const out = { ...definition, flowlets };
  let schema = null;
  if (definition._inputSchemaText !== undefined) {
    const text = definition._inputSchemaText.trim();
    if (text) {
      try {
        schema = JSON.parse(text);
      } catch (error) {
        throw new ClientProblem("inputSchema", `not JSON (${error.message})`);
      }
    }
    out.inputSchema = schema;
  }
  delete out._inputSchemaText;
  if (definition._tagsText !== undefined) {
    out.tags = definition._tagsText.split(",").map((t) => t.trim()).filter((t) => t);
  }
  delete out._tagsText;
  return out;
}

// -- building the form -------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

// A labelled input bound to obj[prop]; `path` names it as the server's problems do.
function field({ id, label, path, obj, prop, type = "text", help, list, rows, options, onChange, wide }) {
  const value = obj[prop] ?? "";
  let input;
  if (options) {
    input = h("select", { id, disabled: readOnly });
    for (const [optValue, optLabel] of options) {
      input.append(h("option", { value: optValue, selected: String(value) === optValue, text: optLabel }));
    }
  } else if (rows) {
    input = h("textarea", { id, rows, readonly: readOnly, spellcheck: "false" });
    input.value = value;
  } else if (type === "checkbox") {
    input = h("input", { id, type, disabled: readOnly });
    input.checked = Boolean(value);
  } else {
    input = h("input", { id, type, list, readonly: readOnly, autocomplete: "off", spellcheck: "false" });
    input.value = value;
  }
  input.dataset.path = path;
  const update = () => {
    obj[prop] = type === "checkbox" ? input.checked : input.value;
  };
  input.addEventListener("input", update);
  input.addEventListener("change", () => {
    update();
    if (onChange) onChange();
  });
  const helpEl = help ? h("small", { class: "help", id: `${id}-help`, text: help }) : null;
  if (helpEl) input.setAttribute("aria-describedby", helpEl.id);
  const cls = `field${type === "checkbox" ? " check" : ""}${wide ? " wide" : ""}`;
  if (type === "checkbox") return h("div", { class: cls }, input, h("label", { for: id, text: label }), helpEl);
  return h("div", { class: cls }, h("label", { for: id, text: label }), input, helpEl);
}

function suggestionsFor(lane) {
  const out = ["{{ $prev.args }}"];
  const inputProps = definition.inputSchema?.properties || {};
  for (const name of Object.keys(inputProps)) out.push(`{{ $prev.args.${name} }}`);
  for (const step of steps) {
    if (step.index >= lane || !step.ref) continue;
    out.push(`{{ $prev.${step.ref} }}`);
    const outputs = modules.get(step.appId)?.outputSchema?.properties || {};
    for (const name of Object.keys(outputs)) out.push(`{{ $prev.${step.ref}.${name} }}`);
  }
  return out;
}

function datalists() {
  const lanes = [...new Set(steps.map((s) => s.index))];
  return lanes.map((lane) =>
    h("datalist", { id: `prev-lane-${lane}` }, suggestionsFor(lane).map((v) => h("option", { value: v }))),
  );
}

// A ref changed: the later steps' suggestions follow, without rebuilding the form (the
// change may come from the click on Save that blurred the field).
function refreshSuggestions() {
  for (const list of form.querySelectorAll("datalist")) list.remove();
  const lists = datalists();
  const picker = form.querySelector(".add-step");
  if (picker) picker.before(...lists);
  else form.append(...lists);
}

function argFields(step, at) {
  const { props, required } = schemaProps(step.appId);
  const list = `prev-lane-${step.index}`;
  const fields = Object.entries(props).map(([name, schema]) => {
    const kind = kindOf(schema);
    const id = `s${step.key}-arg-${name}`;
    const label = required.has(name) ? `${name} (required)` : name;
    const hints = [schema.description, kind === "json" ? "JSON, or text that may hold {{ }} expressions" : null];
    const common = { id, label, path: `${at}.args.${name}`, obj: step.argText, prop: name, help: hints.filter(Boolean).join(" · ") || undefined };
    if (kind === "enum") {
      return field({ ...common, options: [["", "—"], ...schema.enum.map((v) => [v, v])] });
    }
    if (kind === "boolean") return field({ ...common, options: [["", "—"], ["true", "true"], ["false", "false"]] });
    if (kind === "json") return field({ ...common, rows: 3, wide: true });
    return field({ ...common, list, wide: kind === "string" });
  });
  const extraHelp = Object.keys(props).length
    ? "Arguments the form above has no field for, as a JSON object"
    : "This module's arguments, as a JSON object";
  fields.push(field({ id: `s${step.key}-extra`, label: "Other arguments (JSON)", path: `${at}.args`, obj: step, prop: "extraText", rows: 2, help: extraHelp, wide: true }));
  return h("fieldset", { class: "args" }, h("legend", { text: "Arguments" }), fields);
}

function filterRows(step, at) {
  const list = `prev-lane-${step.index}`;
  const rows = step.filters.map((f, j) => {
    const fat = `${at}.filters[${j}]`;
    const id = `s${step.key}-f${j}`;
    return h(
      "div",
      { class: "filter row", role: "group", "aria-label": `Filter ${j + 1}` },
      j === 0 ? null : field({ id: `${id}-mode`, label: "Join with", path: `${fat}.mode`, obj: f, prop: "mode", options: [["and", "and"], ["or", "or"]] }),
      field({ id: `${id}-left`, label: "Left value", path: `${fat}.leftValue`, obj: f, prop: "left", list }),
      field({ id: `${id}-op`, label: "Operator", path: `${fat}.operator`, obj: f, prop: "operator", options: OPERATORS.map((o) => [o, o]) }),
      field({ id: `${id}-right`, label: "Right value", path: `${fat}.rightValue`, obj: f, prop: "right", list }),
      field({ id: `${id}-cast`, label: "Cast", path: `${fat}.cast`, obj: f, prop: "cast", options: CASTS.map((c) => [c, c || "none"]) }),
      readOnly ? null : h("button", { type: "button", class: "link", dataset: { action: "remove-filter", step: step.key, filter: j }, text: `Remove filter ${j + 1}` }),
    );
  });
  return h(
    "fieldset",
    { class: "step-filters", "data-path": `${at}.filters` },
    h("legend", { text: "Filters (the step runs only when they hold)" }),
    rows.length ? rows : h("p", { class: "empty", text: "No filters: the step always runs." }),
    readOnly ? null : h("button", { type: "button", dataset: { action: "add-filter", step: step.key }, text: "Add filter" }),
  );
}

function componentFields(step, at) {
  const kinds = new Set([...(modules.get(step.appId)?.components || []), ...Object.keys(step.components)]);
  if (!kinds.size) return null;
  return h(
    "fieldset",
    { class: "components", "data-path": `${at}.componentConfigIds` },
    h("legend", { text: "Components" }),
    [...kinds].map((kind) => {
      const mine = data.components.filter((c) => c.kind === kind);
      const options = [["", "company default"], ...mine.map((c) => [c.id, `${c.name}${c.isDefault ? " (default)" : ""}`])];
      const chosen = step.components[kind];
      if (chosen && !mine.some((c) => c.id === chosen)) options.push([chosen, chosen]);
      return field({ id: `s${step.key}-comp-${kind}`, label: `${kind} component`, path: `${at}.componentConfigIds.${kind}`, obj: step.components, prop: kind, options });
    }),
  );
}

function stepView(step, position, lanePeers) {
  const at = `flowlets[${position}]`;
  const module = modules.get(step.appId);
  const title = () => `Step ${position + 1}: ${step.ref || "(no ref)"} · ${step.appId}`;
  const legend = h("legend", { text: title() });
  const peerIndex = lanePeers.indexOf(step);
  const controls = readOnly
    ? null
    : h(
        "div",
        { class: "toolbar step-tools" },
        h("button", { type: "button", dataset: { action: "up", step: step.key }, disabled: peerIndex <= 0, text: "Move up in lane" }),
        h("button", { type: "button", dataset: { action: "down", step: step.key }, disabled: peerIndex >= lanePeers.length - 1, text: "Move down in lane" }),
        h("button", { type: "button", class: "danger", dataset: { action: "remove", step: step.key }, text: "Remove step" }),
      );
  const ref = field({ id: `s${step.key}-ref`, label: "Ref", path: `${at}.ref`, obj: step, prop: "ref", help: "its name in expressions: $prev.<ref>", onChange: refreshSuggestions });
  ref.querySelector("input").addEventListener("input", () => {
    legend.textContent = title();
  });
  const settings = h(
    "details",
    { class: "settings" },
    h("summary", { text: "Retry, timeout, approval" }),
    h(
      "div",
      { class: "row" },
      RETRY_FIELDS.map(([name, label, fallback]) =>
        field({ id: `s${step.key}-retry-${name}`, label, path: `${at}.retry.${name}`, obj: step.retry, prop: name, type: "number", help: `default ${fallback}` }),
      ),
      field({ id: `s${step.key}-retry-jitter`, label: "Jitter", path: `${at}.retry.jitter`, obj: step.retry, prop: "jitter", type: "checkbox" }),
    ),
    h(
      "div",
      { class: "row" },
      field({ id: `s${step.key}-timeout`, label: "Timeout (s)", path: `${at}.timeout`, obj: step, prop: "timeout", type: "number", help: "per attempt; empty: none" }),
      field({ id: `s${step.key}-approval`, label: "Needs approval", path: `${at}.needsApproval`, obj: step, prop: "needsApproval", type: "checkbox", help: "the play waits for a person before this step" }),
    ),
  );
  return h(
    "fieldset",
    { class: "step", id: `step-${step.key}`, "data-path": at },
    legend,
    module ? h("p", { class: "help", text: module.description }) : h("p", { class: "problem", text: `unknown module ${step.appId}` }),
    h(
      "div",
      { class: "row" },
      ref,
      field({ id: `s${step.key}-name`, label: "Label", path: `${at}.name`, obj: step, prop: "name", help: "for people; defaults to the ref" }),
      field({ id: `s${step.key}-lane`, label: "Lane", path: `${at}.index`, obj: step, prop: "index", type: "number", help: "same lane: runs in parallel", onChange: () => {
        step.index = Number(step.index) || 0;
        render();
      } }),
    ),
    argFields(step, at),
    filterRows(step, at),
    componentFields(step, at),
    settings,
    controls,
  );
}

function flowFields() {
  if (definition._inputSchemaText === undefined) {
    definition._inputSchemaText = definition.inputSchema ? JSON.stringify(definition.inputSchema, null, 2) : "";
  }
  if (definition._tagsText === undefined) definition._tagsText = (definition.tags || []).join(", ");
  if (definition.enabled === undefined || definition.enabled === null) definition.enabled = true;
  return h(
    "fieldset",
    { class: "flow-fields" },
    h("legend", { text: "Flow" }),
    h(
      "div",
      { class: "row" },
      field({ id: "flow-name", label: "Flow name", path: "name", obj: definition, prop: "name" }),
      field({ id: "flow-group", label: "Group", path: "group", obj: definition, prop: "group", help: "flows of a group share the flow_group KV scope" }),
      field({ id: "flow-tags", label: "Tags", path: "tags", obj: definition, prop: "_tagsText", help: "separated by commas" }),
      field({ id: "flow-enabled", label: "Enabled", path: "enabled", obj: definition, prop: "enabled", type: "checkbox", help: "schedules, channels, MCP and subflow steps start only an enabled flow" }),
    ),
    field({ id: "flow-description", label: "Description", path: "description", obj: definition, prop: "description", rows: 2, wide: true }),
    field({ id: "flow-input-schema", label: "Input schema (JSON Schema)", path: "inputSchema", obj: definition, prop: "_inputSchemaText", rows: 4, wide: true, help: "a play's input must match it; empty: any input", onChange: () => {
      try {
        definition.inputSchema = definition._inputSchemaText.trim() ? JSON.parse(definition._inputSchemaText) : null;
      } catch {
        return; // shown when saving
      }
      render();
    } }),
  );
}

function modulePicker() {
  const search = h("input", { id: "module-search", type: "search", autocomplete: "off", "aria-controls": "module-choice" });
  const choice = h("select", { id: "module-choice", size: 8 });
  const about = h("p", { class: "help", id: "module-about", "aria-live": "polite" });
  const lanes = [...new Set(steps.map((s) => s.index))];
  const laneSelect = h(
    "select",
    { id: "module-lane" },
    h("option", { value: "new", text: "a new lane after the others" }),
    lanes.map((lane) => h("option", { value: String(lane), text: `lane ${lane} (in parallel)` })),
  );
  const fill = () => {
    const term = search.value.trim().toLowerCase();
    const ranked = data.modules
      .map((m) => {
        const id = m.appId.toLowerCase();
        const rank = !term ? 2 : id === term ? 0 : id.startsWith(term) ? 1 : id.includes(term) ? 2
          : `${m.category} ${m.description}`.toLowerCase().includes(term) ? 3 : -1;
        return [rank, m];
      })
      .filter(([rank]) => rank >= 0);
    if (term) ranked.sort((a, b) => a[0] - b[0]);
    choice.replaceChildren(...ranked.map(([, m]) => h("option", { value: m.appId, text: `${m.appId} — ${m.category}` })));
    if (choice.options.length) choice.selectedIndex = 0;
    describe();
  };
  const describe = () => {
    const m = modules.get(choice.value);
    about.textContent = m ? m.description : "No module matches.";
  };
  search.addEventListener("input", fill);
  choice.addEventListener("change", describe);
  fill();
  const add = h("button", { type: "button", id: "add-step", class: "primary", text: "Add step" });
  add.addEventListener("click", () => {
    const appId = choice.value;
    if (!appId) return;
    const base = appId.replace(/[^A-Za-z0-9]/g, "") || "step";
    let n = 1;
    while (steps.some((s) => s.ref === `${base}${n}`)) n += 1;
    const lane = laneSelect.value === "new" ? (steps.length ? Math.max(...steps.map((s) => s.index)) + 1 : 0) : Number(laneSelect.value);
    const step = toStep({ ref: `${base}${n}`, appId, args: {} }, lane);
    steps.push(step);
    render();
    document.getElementById(`s${step.key}-ref`)?.focus();
  });
  return h(
    "section",
    { class: "add-step", "aria-labelledby": "add-step-title", "data-path": "flowlets" },
    h("h2", { id: "add-step-title", text: "Add a step" }),
    h(
      "div",
      { class: "row picker" },
      h("div", { class: "field" }, h("label", { for: "module-search", text: "Find a module" }), search),
      h("div", { class: "field" }, h("label", { for: "module-choice", text: "Module" }), choice),
      h("div", { class: "field" }, h("label", { for: "module-lane", text: "Add to" }), laneSelect),
      add,
    ),
    about,
  );
}

function render() {
  sortSteps();
  const lanes = new Map();
  for (const step of steps) {
    if (!lanes.has(step.index)) lanes.set(step.index, []);
    lanes.get(step.index).push(step);
  }
  let position = 0;
  const laneViews = [...lanes.entries()].map(([index, peers], n) =>
    h(
      "li",
      { class: `lane${peers.length > 1 ? " parallel" : ""}`, "aria-label": `Lane ${n + 1}` },
      h("h3", { text: `Lane ${n + 1} · index ${index}${peers.length > 1 ? ` · ${peers.length} steps in parallel` : ""}` }),
      peers.map((step) => stepView(step, position++, peers)),
    ),
  );
  const children = [
    h("div", { id: "editor-problems", role: "alert" }),
    flowFields(),
    h("h2", { id: "steps-title", text: `Steps (${steps.length})` }),
    steps.length
      ? h("ol", { class: "lanes", "aria-labelledby": "steps-title" }, laneViews)
      : h("p", { class: "empty", "data-path": "flowlets", text: "No steps yet: add the first one below." }),
    ...datalists(),
  ];
  if (!readOnly) {
    children.push(
      modulePicker(),
      h(
        "div",
        { class: "toolbar save-bar" },
        h("button", { type: "submit", class: "primary", id: "save-flow", text: "Save" }),
        h("span", { id: "save-status", role: "status", "aria-live": "polite" }),
      ),
    );
  }
  form.replaceChildren(...children);
}

// -- actions -----------------------------------------------------------------------------

form.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-action]") : null;
  if (!button || readOnly) return;
  const step = steps.find((s) => String(s.key) === button.dataset.step);
  if (!step) return;
  const action = button.dataset.action;
  if (action === "remove") {
    steps.splice(steps.indexOf(step), 1);
  } else if (action === "add-filter") {
    step.filters.push({ left: "", operator: "eq", right: "", cast: "", mode: "and" });
  } else if (action === "remove-filter") {
    step.filters.splice(Number(button.dataset.filter), 1);
  } else if (action === "up" || action === "down") {
    const peers = steps.filter((s) => s.index === step.index);
    const other = peers[peers.indexOf(step) + (action === "up" ? -1 : 1)];
    if (!other) return;
    const i = steps.indexOf(step);
    const j = steps.indexOf(other);
    [steps[i], steps[j]] = [steps[j], steps[i]];
  }
  render();
  const focus = document.querySelector(`#step-${step.key} button[data-action="${action}"]:not([disabled])`);
  (focus || document.getElementById(`s${step.key}-ref`) || document.getElementById("add-step"))?.focus();
});

function clearProblems() {
  for (const el of form.querySelectorAll(".problem.from-save")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    const help = el.getAttribute("aria-describedby")?.split(" ").filter((id) => !id.startsWith("problem-")).join(" ");
    if (help) el.setAttribute("aria-describedby", help);
    else el.removeAttribute("aria-describedby");
  }
  document.getElementById("editor-problems").replaceChildren();
}

// The element a problem's path names, or the nearest one above it ("flowlets[2].args.url.x"
// -> "flowlets[2].args.url" -> "flowlets[2].args" -> "flowlets[2]" -> "flowlets").
function placeOf(path) {
  let at = path;
  while (at) {
    const found = [...form.querySelectorAll("[data-path]")].find((el) => el.dataset.path === at);
    if (found) return found;
    const cut = Math.max(at.lastIndexOf("."), at.lastIndexOf("["));
    at = cut > 0 ? at.slice(0, cut) : "";
  }
  return null;
}

let problemCount = 0;
function showProblems(fields) {
  clearProblems();
  const summary = document.getElementById("editor-problems");
  const items = [];
  for (const { field: path, message } of fields) {
    const place = placeOf(path);
    const id = `problem-${++problemCount}`;
    const note = h("small", { class: "problem from-save", id, text: message });
    if (place && ["INPUT", "SELECT", "TEXTAREA"].includes(place.tagName)) {
      place.setAttribute("aria-invalid", "true");
      const described = place.getAttribute("aria-describedby");
      place.setAttribute("aria-describedby", described ? `${id} ${described}` : id);
      place.closest(".field").append(note);
    } else if (place) {
      const legend = place.querySelector(":scope > legend, :scope > h2");
      if (legend) legend.after(note);
      else place.prepend(note);
    }
    if (place) {
      const details = place.closest("details");
      if (details) details.open = true;
    }
    items.push(h("li", {}, h("code", { text: path }), `: ${message}`));
  }
  summary.replaceChildren(
    h("div", { class: "alert error" }, h("p", { text: "The flow was not saved:" }), h("ul", {}, items)),
  );
  const first = form.querySelector("[aria-invalid=true]");
  if (first) first.focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (readOnly) return;
  const status = document.getElementById("save-status");
  const button = document.getElementById("save-flow");
  let body;
  try {
    body = serialise();
  } catch (error) {
    if (error instanceof ClientProblem) {
      showProblems([{ field: error.field, message: error.message }]);
      return;
    }
    throw error;
  }
  button.disabled = true;
  status.textContent = "Saving…";
  try {
    const answer = await fetch(data.saveUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const reply = await answer.json().catch(() => ({ message: `the server answered ${answer.status}` }));
    if (answer.ok) {
      if (answer.status === 201) {
        window.location.assign(`${data.flowUrl}${reply.id}`);
        return;
      }
      clearProblems();
      status.textContent = `Saved as version ${reply.version}.`;
      document.querySelector("h1").textContent = body.name;
    } else if (reply.fields && reply.fields.length) {
      showProblems(reply.fields);
      status.textContent = "Not saved: see the problems.";
    } else {
      status.textContent = `Not saved: ${reply.message || answer.status}`;
    }
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
  } finally {
    button.disabled = false;
  }
});

render();
