// Runs: an export's history, and one run live (the exportRun subscription): progress,
// phase, counts, cancel; then its rejected records and field warnings, as a CSV too.

import { scheduleText, syncModeText } from "./exports.js";
import { badge, h, notice, table, when } from "./ui.js";

const USER_ERRORS = "userErrors { field message code }";

const COUNT_NAMES = [
  ["profilesTotal", "Profiles in the segments"],
  ["profilesRead", "Profiles read"],
  ["contactsSent", "Contacts sent"],
  ["acceptedByDestination", "Accepted by the destination"],
  ["rejectedByDestination", "Rejected by the destination"],
  ["skippedInvalid", "Skipped: invalid"],
  ["skippedDuplicate", "Skipped: duplicate"],
  ["cannotAddToList", "Could not be added to the list"],
  ["skippedUnchanged", "Not sent: unchanged"],
  ["removedFromList", "Removed from the list"],
  ["removalsFailed", "Removals refused"],
  ["fieldWarnings", "Field warnings (sent without a value)"],
];
const COUNTS = `counts { ${COUNT_NAMES.map(([name]) => name).join(" ")} }`;
const RUN_FIELDS = `id status trigger requestedBy queuedAt startedAt finishedAt progress message cancelRequested ${COUNTS}`;
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"]);
const TRIGGERS = {
  ON_DEMAND: "on demand",
  REFRESH_SCHEDULE: "system refresh",
  EXPORT_SCHEDULE: "own schedule",
};

const HISTORY = `
query ExportHistory($id: ID!) {
  node(id: $id) { ... on Export {
    id displayName canEdit attached nextRunAt syncMode
    connection { displayName }
    schedule { mode recurrence { frequency weekdays times timeZone } }
    runs(first: 50) { totalCount edges { node { ${RUN_FIELDS} } } }
  } }
}`;

const RUN = `
query RunDetail($id: ID!) {
  node(id: $id) { ... on ExportRun {
    ${RUN_FIELDS}
    export { id displayName canEdit }
    errors(first: 1000) { profileId field code message }
  } }
}`;

const LIVE = `subscription LiveRun($id: ID!) { exportRun(id: $id) { ${RUN_FIELDS} } }`;
const LIVE_HISTORY = `subscription LiveHistory($exportId: ID) { exportRuns(exportId: $exportId) { id status } }`;

function duration(run) {
  if (!run.startedAt) return "—";
  const end = run.finishedAt ? new Date(run.finishedAt) : new Date();
  const seconds = Math.max(0, Math.round((end - new Date(run.startedAt)) / 1000));
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

export async function runsScreen(ctx, exportId) {
  const data = await ctx.api.request(HISTORY, { id: exportId });
  const x = data.node;
  if (!x) throw new Error(`export ${exportId} does not exist`);
  const messages = h("div", { class: "messages" });
  const history = h("div", { class: "history" });
  const showHistory = (runs, total) => {
    history.replaceChildren(
      h("h2", {}, `Run history (${total})`),
      table(
        `Runs of ${x.displayName}`,
        ["Queued", "Trigger", "Status", "Duration", "Sent", "Accepted", "Rejected", "Skipped", "Unchanged", ""],
        runs.map((r) => [
          when(r.queuedAt),
          TRIGGERS[r.trigger] || r.trigger,
          badge(r.status),
          duration(r),
          String(r.counts.contactsSent),
          String(r.counts.acceptedByDestination),
          String(r.counts.rejectedByDestination),
          String(r.counts.skippedInvalid + r.counts.skippedDuplicate),
          String(r.counts.skippedUnchanged),
          h("a", { href: `#/runs/${encodeURIComponent(r.id)}` }, "Details"),
        ]),
        "No run yet.",
      ),
    );
  };
  showHistory(x.runs.edges.map((e) => e.node), x.runs.totalCount);
  // New runs and status changes of this export appear without reloading the page.
  let reloading = false;
  const stop = ctx.api.subscribe(LIVE_HISTORY, { exportId }, {
    next: async () => {
      if (reloading) return;
      reloading = true;
      try {
        const again = (await ctx.api.request(HISTORY, { id: exportId })).node;
        if (again) showHistory(again.runs.edges.map((e) => e.node), again.runs.totalCount);
      } finally {
        reloading = false;
      }
    },
    error: () => {},
    complete: () => {},
  });
  ctx.onLeave(stop);

  const actions = h("div", { class: "actions" });
  const preview = h("section", { class: "preview", "aria-labelledby": "preview-title" });
  if (x.canEdit) {
    const run = h("button", { type: "button", class: "primary" }, "Run now");
    const fullResync = h("input", { type: "checkbox", id: "full-resync" });
    const previewButton = h("button", { type: "button" }, "Preview");
    previewButton.addEventListener("click", () => showPreview(ctx, exportId, preview));
    run.addEventListener("click", async () => {
      try {
        const answer = (await ctx.api.request(
          `mutation RunNow($input: RunExportInput!) { runExport(input: $input) { exportRun { id } ${USER_ERRORS} } }`,
          { input: { exportId, fullResync: fullResync.checked } },
        )).runExport;
        if (answer.userErrors.length) {
          messages.replaceChildren(...answer.userErrors.map((e) => notice(e.message, "error")));
          return;
        }
        ctx.navigate(`#/runs/${encodeURIComponent(answer.exportRun.id)}`);
      } catch (error) {
        messages.replaceChildren(notice(error.message, "error"));
      }
    });
    actions.append(
      previewButton,
      run,
      h("label", { class: "check", for: "full-resync" }, fullResync, " Send everything (full resync)"),
      h("a", { class: "button", href: `#/exports/${encodeURIComponent(exportId)}/edit` }, "Edit"),
    );
    if (!x.runs.totalCount) {
      preview.append(h("p", { class: "hint" }, "Not run yet: preview what its first run would send."));
    }
  }
  return h(
    "section",
    { "aria-labelledby": "runs-title" },
    h("p", { class: "crumbs" }, h("a", { href: "#/exports" }, "Exports"), " / "),
    h("h1", { id: "runs-title", tabindex: "-1" }, x.displayName),
    h("dl", { class: "facts" },
      h("dt", {}, "Connection"), h("dd", {}, x.connection ? x.connection.displayName : x.attached ? "attached (hidden from your role)" : "detached"),
      h("dt", {}, "Schedule"), h("dd", {}, scheduleText(x.schedule)),
      h("dt", {}, "Sync mode"), h("dd", {}, syncModeText(x.syncMode)),
      h("dt", {}, "Next run"), h("dd", {}, when(x.nextRunAt))),
    actions,
    messages,
    preview,
    history,
  );
}

const PREVIEW = `
mutation Preview($input: PreviewExportInput!) {
  previewExport(input: $input) {
    preview {
      toAdd toUpdate unchanged toRemove skippedInvalid skippedDuplicate fieldWarnings note
      sample { profileId contact }
    }
    ${USER_ERRORS}
  }
}`;

const PREVIEW_COUNTS = [
  ["toAdd", "To add"],
  ["toUpdate", "To update"],
  ["unchanged", "Unchanged (not sent)"],
  ["toRemove", "To remove from the list"],
  ["skippedInvalid", "Would be skipped: invalid"],
  ["skippedDuplicate", "Would be skipped: duplicate"],
  ["fieldWarnings", "Field warnings"],
];

/** What a run would do now (previewExport sends nothing), shown in `box`. */
async function showPreview(ctx, exportId, box) {
  box.replaceChildren(h("p", { class: "loading", role: "status" }, "Reading what a run would send…"));
  let answer;
  try {
    answer = (await ctx.api.request(PREVIEW, { input: { exportId } })).previewExport;
  } catch (error) {
    box.replaceChildren(notice(error.message, "error"));
    return;
  }
  if (answer.userErrors.length) {
    box.replaceChildren(...answer.userErrors.map((e) => notice(e.message, "error")));
    return;
  }
  const p = answer.preview;
  const contactText = (contact) => Object.entries(contact).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  box.replaceChildren(
    h("div", { class: "card" },
      h("h2", { id: "preview-title" }, "Preview: what a run would do now"),
      h("p", { class: "hint" }, "Nothing was sent."),
      p.note ? notice(p.note, "warning") : null,
      h("dl", { class: "counts" },
        PREVIEW_COUNTS.map(([name, label]) =>
          h("div", { class: "count" }, h("dt", {}, label), h("dd", { dataset: { preview: name } }, String(p[name]))))),
      table(
        "First records a run would send",
        ["Profile", "Record as sent"],
        p.sample.map((s) => [s.profileId, h("code", {}, contactText(s.contact))]),
        "A run would send no record.",
      )),
  );
}

function phaseOf(run) {
  switch (run.status) {
    case "QUEUED":
      return "Waiting for a worker";
    case "RUNNING":
      if (run.cancelRequested) return "Cancelling";
      if (run.counts.profilesTotal && run.counts.profilesRead < run.counts.profilesTotal) return "Reading profiles";
      if (run.counts.contactsSent
        && run.counts.acceptedByDestination + run.counts.rejectedByDestination + run.counts.cannotAddToList
          < run.counts.contactsSent) {
        return "Waiting for the destination to process what was sent";
      }
      return "Sending to the destination";
    default:
      return "Finished";
  }
}

export async function runScreen(ctx, runId) {
  const data = await ctx.api.request(RUN, { id: runId });
  const first = data.node;
  if (!first) throw new Error(`run ${runId} does not exist`);
  const exportRef = first.export;
  const status = h("p", { class: "run-status", "aria-live": "polite" });
  const bar = h("progress", { max: "1", value: "0", id: "run-progress", "aria-label": "Progress" });
  const percent = h("span", { class: "percent" });
  const phase = h("p", { class: "phase" });
  const message = h("p", { class: "run-message" });
  const countCells = new Map();
  const counts = h(
    "dl",
    { class: "counts", "aria-label": "Counts" },
    COUNT_NAMES.map(([name, label]) => {
      const cell = h("dd", { dataset: { count: name } }, "0");
      countCells.set(name, cell);
      return h("div", { class: "count" }, h("dt", {}, label), cell);
    }),
  );
  const times = h("dl", { class: "facts" });
  const cancel = h("button", { type: "button", class: "danger" }, "Cancel run");
  const problems = h("section", { class: "problems", "aria-labelledby": "problems-title" });
  const show = (run) => {
    status.replaceChildren("Status: ", badge(run.status));
    status.dataset.status = run.status;
    bar.value = run.progress;
    bar.setAttribute("aria-valuetext", `${Math.round(run.progress * 100)} %`);
    percent.textContent = `${Math.round(run.progress * 100)} %`;
    phase.textContent = phaseOf(run);
    message.textContent = run.message || "";
    for (const [name, cell] of countCells) cell.textContent = String(run.counts[name]);
    times.replaceChildren(
      h("dt", {}, "Trigger"), h("dd", {}, TRIGGERS[run.trigger] || run.trigger),
      h("dt", {}, "Requested by"), h("dd", {}, run.requestedBy || "—"),
      h("dt", {}, "Queued"), h("dd", {}, when(run.queuedAt)),
      h("dt", {}, "Started"), h("dd", {}, when(run.startedAt)),
      h("dt", {}, "Finished"), h("dd", {}, when(run.finishedAt)),
      h("dt", {}, "Duration"), h("dd", {}, duration(run)),
    );
    // Hidden but still taking its place: the card keeps its height when the run ends.
    const cancellable = !TERMINAL.has(run.status) && exportRef && exportRef.canEdit && !run.cancelRequested;
    cancel.style.visibility = cancellable ? "visible" : "hidden";
    cancel.disabled = !cancellable;
  };
  const showProblems = (errors) => {
    const download = h("button", { type: "button", disabled: !errors.length }, "Download CSV");
    download.addEventListener("click", () => downloadCsv(runId, errors));
    problems.replaceChildren(
      h("h2", { id: "problems-title" }, "Rejected records and field warnings"),
      h("p", { class: "hint" }, `${errors.length} sampled record(s) or batch(es), with the reason for each.`),
      download,
      table(
        "Rejected records and field warnings",
        ["Profile", "Field", "Code", "Reason"],
        errors.map((e) => [e.profileId || "—", e.field || "—", e.code, e.message]),
        "No record was rejected and no field was left out.",
      ),
    );
  };
  show(first);
  showProblems(first.errors);
  cancel.addEventListener("click", async () => {
    try {
      const answer = (await ctx.api.request(
        `mutation Cancel($input: CancelExportRunInput!) { cancelExportRun(input: $input) { exportRun { ${RUN_FIELDS} } ${USER_ERRORS} } }`,
        { input: { runId } },
      )).cancelExportRun;
      if (answer.userErrors.length) message.textContent = answer.userErrors.map((e) => e.message).join(" ");
      else show(answer.exportRun);
    } catch (error) {
      message.textContent = error.message;
    }
  });
  const live = h("p", { class: "hint live-state", "aria-live": "polite" });
  if (TERMINAL.has(first.status)) {
    live.textContent = "The run has ended.";
  } else {
    live.textContent = "Live: updates arrive as the run moves.";
    const stop = ctx.api.subscribe(LIVE, { id: runId }, {
      next: (update) => show(update.exportRun),
      error: (error) => (live.textContent = `Live updates stopped: ${error.message}`),
      complete: async () => {
        live.textContent = "The run has ended.";
        try {
          const done = (await ctx.api.request(RUN, { id: runId })).node;
          if (done) {
            show(done);
            showProblems(done.errors);
          }
        } catch (error) {
          live.textContent = error.message;
        }
      },
    });
    ctx.onLeave(stop);
  }
  return h(
    "section",
    { "aria-labelledby": "run-title", class: "run" },
    h("p", { class: "crumbs" },
      h("a", { href: "#/exports" }, "Exports"), " / ",
      exportRef ? h("a", { href: `#/exports/${encodeURIComponent(exportRef.id)}/runs` }, exportRef.displayName) : "removed export",
      " /"),
    h("h1", { id: "run-title", tabindex: "-1" }, exportRef ? `Run of ${exportRef.displayName}` : "Run"),
    h("div", { class: "card live" },
      status, live,
      h("div", { class: "bar" }, bar, percent),
      phase, message, counts, cancel),
    times,
    problems,
  );
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  // Quote every cell, double inner quotes; a leading = + - @ is defused for spreadsheets.
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return `"${safe.replaceAll('"', '""')}"`;
}

function downloadCsv(runId, errors) {
  const lines = [["profileId", "field", "code", "message"], ...errors.map((e) => [e.profileId, e.field, e.code, e.message])];
  const text = lines.map((line) => line.map(csvCell).join(",")).join("\r\n") + "\r\n";
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  const link = h("a", { href: url, download: `run-${runId.slice(0, 12)}-records.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
