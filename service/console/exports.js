// Data > Exports: the list (search, schedule, last run), its actions, and the editor
// (connection, the destination's list picker, field mapping, segments, schedule).

import { recurrenceEditor } from "./recurrence.js";
import {
  badge,
  clearErrors,
  field,
  formError,
  h,
  notice,
  select,
  showFormError,
  showUserErrors,
  table,
  when,
} from "./ui.js";

const USER_ERRORS = "userErrors { field message code }";

const EXPORTS = `
query ConsoleExports($search: String) {
  exports(first: 100, search: $search) {
    totalCount
    edges { node {
      id displayName attached canEdit nextRunAt syncMode
      connection { id displayName }
      destinationType { key displayName }
      schedule { mode recurrence { frequency weekdays times timeZone } }
      segments { id name }
      lastRun { id status finishedAt queuedAt counts { profilesTotal contactsSent } }
    } }
  }
}`;

const EXPORT = `
query ConsoleExport($id: ID!) {
  node(id: $id) { ... on Export {
    id displayName settings canEdit attached syncMode
    connection { id displayName }
    destinationType { key }
    fieldMapping { source target }
    segments { id }
    schedule { mode recurrence { frequency weekdays times timeZone } }
  } }
}`;

const EDITOR_DATA = `
query ConsoleExportEditor {
  connections(first: 100) { edges { node {
    id displayName ready usableBy
    destinationType {
      key displayName
      exportSettings { name label type required description }
      mappingTargets { name label required maxLength kind }
    }
  } } }
  profileAttributes
  segments(first: 100) { edges { node { id name memberCount } } }
}`;

// The targets of the chosen connection: its type's own and the account's (custom fields),
// for the settings chosen so far (a destination's may depend on the chosen list or audience).
const CONNECTION_TARGETS = `
query ConnectionTargets($id: ID!, $settings: JSON) {
  node(id: $id) {
    ... on Connection { mappingTargets(exportSettings: $settings) { name label required maxLength kind } }
  }
}`;

const CHOICES = `
query SettingChoices($connectionId: ID!, $setting: String!) {
  exportSettingChoices(connectionId: $connectionId, setting: $setting) { id name memberCount }
}`;

export const SCHEDULE_MODES = [
  ["REFRESH_SCHEDULE", "Follow the system refresh schedule"],
  ["OWN", "Its own schedule"],
  ["OFF", "Off (run on demand only)"],
];

export const SYNC_MODES = [
  ["SEND_CHANGES", "Send changes"],
  ["SEND_ALL", "Send all"],
  ["MIRROR", "Mirror"],
];

export function syncModeText(mode) {
  return { SEND_ALL: "Send all", SEND_CHANGES: "Send changes", MIRROR: "Mirror" }[mode] || mode;
}

export function scheduleText(schedule) {
  if (schedule.mode === "OFF") return "Off";
  if (schedule.mode === "REFRESH_SCHEDULE") return "System refresh";
  const r = schedule.recurrence;
  const days = r.frequency === "WEEKLY" ? ` on ${r.weekdays.map((d) => d.slice(0, 3).toLowerCase()).join(", ")}` : " daily";
  return `Own:${days} at ${r.times.join(", ")} (${r.timeZone})`;
}

export async function exportsScreen(ctx) {
  const search = h("input", { type: "search", name: "search", autocomplete: "off" });
  const results = h("div", { class: "results", "aria-live": "polite" });
  const messages = h("div", { class: "messages" });
  const load = async () => {
    const data = await ctx.api.request(EXPORTS, { search: search.value || null });
    const exports = data.exports.edges.map((e) => e.node);
    results.replaceChildren(
      h("p", { class: "lede" }, `${data.exports.totalCount} export(s).`),
      table(
        "Exports",
        ["Name", "Connection", "Segments", "Schedule", "Sync mode", "Last run", "Next run", "Actions"],
        exports.map((x) => [
          h("a", { href: `#/exports/${encodeURIComponent(x.id)}/runs`, class: "export-name" }, x.displayName),
          x.connection ? x.connection.displayName : x.attached ? "attached (hidden from your role)" : h("em", {}, "detached"),
          x.segments.map((s) => s.name).join(", "),
          scheduleText(x.schedule),
          syncModeText(x.syncMode),
          x.lastRun
            ? h("a", { href: `#/runs/${encodeURIComponent(x.lastRun.id)}` }, badge(x.lastRun.status), " ", when(x.lastRun.finishedAt || x.lastRun.queuedAt))
            : "never",
          when(x.nextRunAt),
          exportActions(ctx, x, messages),
        ]),
        search.value ? "No export matches." : "No export yet.",
      ),
    );
  };
  const form = h(
    "form",
    { class: "search", role: "search" },
    field("Search exports", search).wrapper,
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load().catch((error) => messages.replaceChildren(notice(error.message, "error")));
  });
  const runAll = h("button", { type: "button" }, "Run all");
  runAll.addEventListener("click", async () => {
    try {
      const answer = (
        await ctx.api.request(
          `mutation RunAll { runAllExports(input: {}) { exportRuns { id } ${USER_ERRORS} } }`,
        )
      ).runAllExports;
      messages.replaceChildren(
        notice(`${answer.exportRuns.length} run(s) queued.`, "success"),
        ...answer.userErrors.map((e) => notice(e.message, "warning")),
      );
      await load();
    } catch (error) {
      messages.replaceChildren(notice(error.message, "error"));
    }
  });
  await load();
  return h(
    "section",
    { "aria-labelledby": "exports-title" },
    h("div", { class: "title-row" },
      h("h1", { id: "exports-title", tabindex: "-1" }, "Exports"),
      ctx.can.manageExports
        ? h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/exports/new" }, "New export"), runAll)
        : null),
    form,
    messages,
    results,
  );
}

function exportActions(ctx, x, messages) {
  if (!x.canEdit) return h("span", { class: "hint" }, "read only");
  const say = (text, kind) => messages.replaceChildren(notice(text, kind));
  const mutate = async (name, inputType, input, selection) => {
    const answer = (
      await ctx.api.request(
        `mutation Act($input: ${inputType}!) { ${name}(input: $input) { ${selection} ${USER_ERRORS} } }`,
        { input },
      )
    )[name];
    if (answer.userErrors.length) throw new Error(answer.userErrors.map((e) => e.message).join(" "));
    return answer;
  };
  const act = (fn) => async () => {
    try {
      await fn();
    } catch (error) {
      say(error.message, "error");
    }
  };
  const label = (verb) => `${verb} ${x.displayName}`;
  const buttons = [
    h("button", {
      type: "button",
      "aria-label": label("Run now:"),
      onclick: act(async () => {
        const answer = await mutate("runExport", "RunExportInput", { exportId: x.id }, "exportRun { id }");
        ctx.navigate(`#/runs/${encodeURIComponent(answer.exportRun.id)}`);
      }),
    }, "Run now"),
    h("a", { class: "button", href: `#/exports/${encodeURIComponent(x.id)}/edit`, "aria-label": label("Edit") }, "Edit"),
    h("button", {
      type: "button",
      "aria-label": label("Duplicate"),
      onclick: act(async () => {
        await mutate("duplicateExport", "DuplicateExportInput", { id: x.id }, "export { id }");
        say(`Duplicated ${x.displayName}.`, "success");
        ctx.refresh();
      }),
    }, "Duplicate"),
    x.attached
      ? h("button", {
        type: "button",
        "aria-label": label("Detach"),
        onclick: act(async () => {
          await mutate("detachConnection", "DetachConnectionInput", { exportId: x.id }, "export { id }");
          ctx.refresh();
        }),
      }, "Detach")
      : h("button", {
        type: "button",
        "aria-label": label("Attach"),
        onclick: act(async () => attachForm(ctx, x, messages)),
      }, "Attach…"),
    h("button", {
      type: "button",
      class: "danger",
      "aria-label": label("Remove"),
      onclick: act(async () => removeForm(ctx, x, messages, mutate)),
    }, "Remove…"),
  ];
  return h("div", { class: "actions" }, buttons);
}

async function attachForm(ctx, x, messages) {
  const data = await ctx.api.request(EDITOR_DATA);
  const usable = data.connections.edges
    .map((e) => e.node)
    .filter((c) => c.destinationType.key === x.destinationType.key);
  const picker = select(usable.map((c) => [c.id, c.displayName]), usable.length ? usable[0].id : "");
  const form = h(
    "form",
    { class: "card inline-form", "aria-label": `Attach ${x.displayName}` },
    h("h2", {}, `Attach ${x.displayName} to a connection`),
    field("Connection", picker, { path: ["connectionId"] }).wrapper,
    formError(),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Attach"),
      h("button", { type: "button", onclick: () => messages.replaceChildren() }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = (
        await ctx.api.request(
          `mutation Attach($input: AttachConnectionInput!) {
            attachConnection(input: $input) { export { id } ${USER_ERRORS} } }`,
          { input: { exportId: x.id, connectionId: picker.value } },
        )
      ).attachConnection;
      if (answer.userErrors.length) showUserErrors(form, answer.userErrors);
      else ctx.refresh();
    } catch (error) {
      showFormError(form, error.message);
    }
  });
  messages.replaceChildren(form);
  picker.focus();
}

function removeForm(ctx, x, messages, mutate) {
  const confirm = h("button", { type: "button", class: "danger" }, `Remove ${x.displayName}`);
  const cancel = h("button", { type: "button", onclick: () => messages.replaceChildren() }, "Cancel");
  confirm.addEventListener("click", async () => {
    try {
      await mutate("removeExport", "RemoveExportInput", { id: x.id }, "removedId");
      ctx.refresh();
    } catch (error) {
      messages.replaceChildren(notice(error.message, "error"));
    }
  });
  messages.replaceChildren(
    h("div", { class: "card", role: "alertdialog", "aria-label": "Confirm removal" },
      h("p", {}, `Remove ${x.displayName} and its run history? This cannot be undone.`),
      h("div", { class: "actions" }, confirm, cancel)),
  );
  cancel.focus();
}

/** New export (id null) or edit one. */
export async function exportEditor(ctx, id) {
  const [data, existing] = await Promise.all([
    ctx.api.request(EDITOR_DATA),
    id ? ctx.api.request(EXPORT, { id }).then((d) => d.node) : Promise.resolve(null),
  ]);
  if (id && !existing) throw new Error(`export ${id} does not exist`);
  const connections = data.connections.edges.map((e) => e.node);
  // Only connections that can run exports now; an edited export keeps its own.
  const usable = connections.filter(
    (c) => c.ready || (existing && existing.connection && existing.connection.id === c.id),
  );
  const attributes = data.profileAttributes;
  const segments = data.segments.edges.map((e) => e.node);

  const name = h("input", { type: "text", name: "displayName", value: existing ? existing.displayName : "" });
  const connection = select(
    [["", usable.length ? "Choose a connection" : "No usable connection"], ...usable.map((c) => [c.id, `${c.displayName} (${c.destinationType.displayName})`])],
    existing && existing.connection ? existing.connection.id : usable.length === 1 ? usable[0].id : "",
    { name: "connectionId", disabled: Boolean(existing) },
  );
  const settingsBox = h("div", { class: "settings" });
  const mappingBox = h("div", { class: "mapping-rows" });
  const datalist = h("datalist", { id: "profile-attributes" }, attributes.map((a) => h("option", { value: a })));
  const settingControls = new Map();
  let mappingRows = [];

  const chosen = () => connections.find((c) => c.id === connection.value) || null;
  const accountTargets = new Map();
  let targetSettings = (existing && existing.settings) || {};
  const targetsKey = (c) => `${c.id} ${JSON.stringify(targetSettings)}`;
  const targetsOf = () => {
    const c = chosen();
    if (!c) return [];
    return accountTargets.get(targetsKey(c)) || c.destinationType.mappingTargets;
  };
  const chosenSettings = () => {
    const settings = {};
    for (const [key, control] of settingControls) if (control.value) settings[key] = control.value;
    return settings;
  };
  /** Ask the connection for its targets (the account's custom fields, the audience's merge
   * fields) for the settings chosen so far, once for each connection and settings. */
  const loadTargets = async (settings = targetSettings) => {
    targetSettings = settings;
    const c = chosen();
    if (!c || accountTargets.has(targetsKey(c))) return;
    try {
      const node = (await ctx.api.request(CONNECTION_TARGETS, { id: c.id, settings })).node;
      if (node && node.mappingTargets) accountTargets.set(targetsKey(c), node.mappingTargets);
    } catch {
      // The type's own targets still serve; the API names a bad one on save.
    }
  };
  /** A setting changed: offer the targets for it, with a row for each newly required one. */
  const settingChanged = async () => {
    const shown = JSON.stringify(targetsOf());
    await loadTargets(chosenSettings());
    // Most destinations offer the same targets whatever the settings: leave the rows be.
    if (JSON.stringify(targetsOf()) === shown) return;
    const mapped = new Set(mappingRows.map((row) => row.target));
    const blank = mappingRows.filter((row) => !row.source && !row.target);
    const added = targetsOf()
      .filter((t) => t.required && !mapped.has(t.name))
      .map((t) => ({ source: attributes.find((a) => a.toLowerCase().includes(t.name.toLowerCase())) || "", target: t.name }));
    if (added.length) mappingRows = [...mappingRows.filter((row) => !blank.includes(row)), ...added];
    renderMapping();
  };

  const renderSettings = async () => {
    settingControls.clear();
    const c = chosen();
    if (!c) {
      settingsBox.replaceChildren();
      return;
    }
    const current = (existing && existing.settings) || {};
    const fields = await Promise.all(
      c.destinationType.exportSettings.map(async (spec) => {
        let control;
        let hint = spec.description;
        try {
          const choices = (await ctx.api.request(CHOICES, { connectionId: c.id, setting: spec.name })).exportSettingChoices;
          // A setting the destination offers no choices for (free-form tags, say) is typed.
          if (!choices.length) throw new Error("no choices");
          control = select(
            [["", "Choose…"], ...choices.map((choice) => [choice.id, choice.memberCount === null ? choice.name : `${choice.name} (${choice.memberCount} contacts)`])],
            current[spec.name] || "",
            { name: spec.name },
          );
        } catch (error) {
          control = h("input", { type: "text", name: spec.name, value: current[spec.name] || "" });
          if (error.message !== "no choices") {
            hint = `${spec.description || ""} (The destination could not list the choices: ${error.message})`;
          }
        }
        control.addEventListener("change", settingChanged);
        settingControls.set(spec.name, control);
        return field(spec.label + (spec.required ? " (required)" : ""), control, {
          hint,
          path: ["settings", spec.name],
        }).wrapper;
      }),
    );
    settingsBox.replaceChildren(...fields);
  };

  const renderMapping = () => {
    const targets = targetsOf();
    mappingBox.replaceChildren(
      ...mappingRows.map((row, index) => {
        const source = h("input", {
          type: "text",
          list: "profile-attributes",
          name: `source-${index}`,
          value: row.source,
          autocomplete: "off",
        });
        source.addEventListener("input", () => (row.source = source.value));
        const target = select(
          [["", "Choose a field"], ...targets.map((t) => [t.name, t.required ? `${t.label} (required)` : t.label])],
          row.target,
          { name: `target-${index}` },
        );
        target.addEventListener("change", () => (row.target = target.value));
        const remove = h("button", { type: "button", class: "link", "aria-label": `Remove mapping ${index + 1}` }, "Remove");
        remove.addEventListener("click", () => {
          mappingRows.splice(index, 1);
          renderMapping();
        });
        return h(
          "div",
          { class: "mapping-row field", dataset: { path: `fieldMapping.${index}` } },
          field(`Profile attribute ${index + 1}`, source, { path: ["fieldMapping", String(index), "source"] }).wrapper,
          h("span", { class: "arrow", "aria-hidden": "true" }, "→"),
          field(`Destination field ${index + 1}`, target, { path: ["fieldMapping", String(index), "target"] }).wrapper,
          remove,
          h("p", { class: "field-error", role: "alert", hidden: true }),
        );
      }),
    );
  };
  const defaultMapping = () => {
    mappingRows = targetsOf()
      .filter((t) => t.required)
      .map((t) => ({ source: attributes.find((a) => a.toLowerCase().includes(t.name.toLowerCase())) || "", target: t.name }));
    if (!mappingRows.length) mappingRows = [{ source: "", target: "" }];
  };
  await loadTargets();
  if (existing) mappingRows = existing.fieldMapping.map((m) => ({ ...m }));
  else defaultMapping();

  connection.addEventListener("change", async () => {
    await loadTargets({});
    defaultMapping();
    renderMapping();
    await renderSettings();
  });
  const addRow = h("button", { type: "button" }, "Add attribute");
  addRow.addEventListener("click", () => {
    mappingRows.push({ source: "", target: "" });
    renderMapping();
    mappingBox.querySelector(".mapping-row:last-child input").focus();
  });

  const chosenSegments = new Set(existing ? existing.segments.map((s) => s.id) : []);
  const segmentBoxes = segments.map((s) => {
    const box = h("input", { type: "checkbox", value: s.id, id: `segment-${s.id}`, checked: chosenSegments.has(s.id) });
    return { box, label: h("label", { class: "check", for: box.id }, box, ` ${s.name} (${s.memberCount} profiles)`) };
  });

  const syncMode = select(SYNC_MODES, existing ? existing.syncMode : "SEND_CHANGES", { name: "syncMode" });
  const mode = select(SCHEDULE_MODES, existing ? existing.schedule.mode : "REFRESH_SCHEDULE", { name: "scheduleMode" });
  const recurrence = recurrenceEditor(ctx.api, existing ? existing.schedule.recurrence : null, ["schedule", "recurrence"]);
  const showRecurrence = () => (recurrence.element.hidden = mode.value !== "OWN");
  mode.addEventListener("change", showRecurrence);
  showRecurrence();

  const form = h(
    "form",
    { class: "card editor", novalidate: true, "aria-labelledby": "editor-title" },
    h("h1", { id: "editor-title", tabindex: "-1" }, existing ? `Edit ${existing.displayName}` : "New export"),
    field("Display name", name, { path: ["displayName"] }).wrapper,
    field("Connection", connection, {
      hint: existing ? "Detach and attach from the list to change it." : "Only connections you may use and that are connected.",
      path: ["connectionId"],
    }).wrapper,
    h("fieldset", {}, h("legend", {}, "Destination settings"), settingsBox),
    h(
      "fieldset",
      { class: "field mapping", dataset: { path: "fieldMapping" } },
      h("legend", {}, "Field mapping"),
      h("p", { class: "hint" }, "Which profile attribute fills each destination field. Required fields are marked."),
      datalist,
      mappingBox,
      addRow,
      h("p", { class: "field-error", role: "alert", hidden: true }),
    ),
    h(
      "fieldset",
      { class: "field segments", dataset: { path: "segmentIds" } },
      h("legend", {}, "Segments"),
      segmentBoxes.length ? segmentBoxes.map((s) => s.label) : h("p", { class: "empty" }, "No segment yet."),
      h("p", { class: "field-error", role: "alert", hidden: true }),
    ),
    field("Sync mode", syncMode, {
      hint: "Send changes: only records new or changed since the destination confirmed them. "
        + "Send all: every record, every run. Mirror: send changes, then take off the list "
        + "the contacts that left the segments (never deleted from the account).",
      path: ["syncMode"],
    }).wrapper,
    h(
      "fieldset",
      { class: "schedule" },
      h("legend", {}, "Schedule"),
      field("Runs", mode, { path: ["schedule", "mode"] }).wrapper,
      recurrence.element,
    ),
    formError(),
    h("p", { class: "hint" }, "Saving does not run the export."),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("a", { class: "button", href: existing ? `#/exports/${encodeURIComponent(existing.id)}/runs` : "#/exports" }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const settings = {};
    for (const [key, control] of settingControls) if (control.value) settings[key] = control.value;
    const schedule = { mode: mode.value, recurrence: mode.value === "OWN" ? recurrence.value() : null };
    const input = {
      displayName: name.value,
      settings,
      fieldMapping: mappingRows.filter((r) => r.source || r.target).map((r) => ({ source: r.source, target: r.target })),
      segmentIds: segmentBoxes.filter((s) => s.box.checked).map((s) => s.box.value),
      schedule,
      syncMode: syncMode.value,
    };
    try {
      let answer;
      if (existing) {
        answer = (await ctx.api.request(
          `mutation EditExport($input: UpdateExportInput!) { updateExport(input: $input) { export { id } ${USER_ERRORS} } }`,
          { input: { id: existing.id, ...input } },
        )).updateExport;
      } else {
        if (!connection.value) {
          showUserErrors(form, [{ field: ["connectionId"], message: "Choose a connection.", code: "REQUIRED" }]);
          return;
        }
        answer = (await ctx.api.request(
          `mutation NewExport($input: CreateExportInput!) { createExport(input: $input) { export { id } ${USER_ERRORS} } }`,
          { input: { connectionId: connection.value, ...input } },
        )).createExport;
      }
      if (answer.userErrors.length) {
        showUserErrors(form, answer.userErrors);
        return;
      }
      ctx.navigate(`#/exports/${encodeURIComponent(answer.export.id)}/runs`);
    } catch (error) {
      showFormError(form, error.message);
    }
  });
  renderMapping();
  await renderSettings();
  return form;
}
