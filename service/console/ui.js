// A tiny view layer: build elements with h(), show userErrors beside the field they name.

/**
 * h("button", {type: "button", onclick: fn}, "Run now"): an element with attributes,
 * properties (on* handlers, value, checked ...) and children (strings become text).
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked" || name === "selected") element[name] = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  appendAll(element, children);
  return element;
}

/** Append children (skipping null, undefined and false; flattening arrays). */
export function append(element, ...children) {
  appendAll(element, children);
}

function appendAll(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendAll(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let uniqueCounter = 0;
/** An id for label/for and aria-describedby pairs. */
export function uid(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

/**
 * A labelled control with a slot for its error: {wrapper, control, error}. The error
 * slot is always there (empty), so showing an error does not move the page around more
 * than its own line.
 */
export function field(label, control, { hint, path } = {}) {
  const id = control.id || uid("f");
  control.id = id;
  const errorId = `${id}-error`;
  const error = h("p", { class: "field-error", id: errorId, role: "alert", hidden: true });
  const describedBy = [errorId];
  let hintElement = null;
  if (hint) {
    hintElement = h("p", { class: "hint", id: `${id}-hint` }, hint);
    describedBy.push(`${id}-hint`);
  }
  control.setAttribute("aria-describedby", describedBy.join(" "));
  const wrapper = h(
    "div",
    { class: "field", dataset: path ? { path: path.join(".") } : {} },
    h("label", { for: id }, label),
    control,
    hintElement,
    error,
  );
  return { wrapper, control, error };
}

/** Clear every error shown inside `form`. */
export function clearErrors(form) {
  for (const error of form.querySelectorAll(".field-error")) {
    error.textContent = "";
    error.hidden = true;
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
  }
  const summary = form.querySelector(".form-error");
  if (summary) {
    summary.textContent = "";
    summary.hidden = true;
  }
}

/**
 * Show each userError beside the field its path names: the longest path prefix that a
 * field of `form` has (data-path "fieldMapping.1.source", then "fieldMapping.1", then
 * "fieldMapping"); errors naming no field go to the form's summary line.
 */
export function showUserErrors(form, userErrors) {
  clearErrors(form);
  const summary = form.querySelector(".form-error");
  let first = null;
  for (const userError of userErrors) {
    const path = userError.field || [];
    let target = null;
    for (let n = path.length; n > 0 && !target; n -= 1) {
      target = form.querySelector(`[data-path="${CSS.escape(path.slice(0, n).join("."))}"]`);
    }
    if (target) {
      const error =
        target.querySelector(":scope > .field-error") || target.querySelector(".field-error");
      error.textContent = error.textContent
        ? `${error.textContent} ${userError.message}`
        : userError.message;
      error.hidden = false;
      const control = target.querySelector("input, select, textarea");
      if (control) control.setAttribute("aria-invalid", "true");
      first = first || control;
    } else if (summary) {
      summary.textContent = summary.textContent
        ? `${summary.textContent} ${userError.message}`
        : userError.message;
      summary.hidden = false;
    }
  }
  if (first) first.focus();
}

/** A form-level error line (role=alert), hidden while empty. */
export function formError() {
  return h("p", { class: "form-error", role: "alert", hidden: true });
}

/** Show a top-level failure (an ApiError) on the form's summary line. */
export function showFormError(form, message) {
  const summary = form.querySelector(".form-error");
  summary.textContent = message;
  summary.hidden = false;
}

/** "2026-12-01T10:00:00+00:00" -> a local, readable date and time. */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** "SUCCEEDED" -> a status badge. */
export function badge(status) {
  if (!status) return h("span", { class: "badge" }, "—");
  const text = status.toLowerCase().replaceAll("_", " ");
  return h("span", { class: `badge badge-${status.toLowerCase()}` }, text);
}

/** A table with a caption, headers and rows (arrays of cells). */
export function table(caption, headers, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h(
        "tbody",
        {},
        // data-label: on narrow screens each row becomes a card naming its cells.
        rows.map((cells) =>
          h("tr", {}, cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell)))),
      ),
    ),
  );
}

/** A <select> of [value, label] options with `selected` chosen. */
export function select(options, selected, attrs = {}) {
  return h(
    "select",
    attrs,
    options.map(([value, label]) => h("option", { value, selected: value === selected }, label)),
  );
}

/** A status line for "Saved.", "Queued." ... read out by screen readers. */
export function notice(text, kind = "info") {
  return h("p", { class: `notice notice-${kind}`, role: "status" }, text);
}
