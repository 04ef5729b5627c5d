// Admin > Schedule: the system refresh schedule (off, daily or weekly, time zone, up to
// four times) with the next run times it produces.

import { recurrenceEditor } from "./recurrence.js";
import { clearErrors, field, formError, h, notice, showFormError, showUserErrors, when } from "./ui.js";

const SCHEDULE = `
query RefreshSchedule {
  refreshSchedule { id enabled frequency weekdays times timeZone updatedBy updatedAt nextRunAt }
}`;

export async function scheduleScreen(ctx) {
  const s = (await ctx.api.request(SCHEDULE)).refreshSchedule;
  const readOnly = !ctx.can.changeSchedule;
  const enabled = h("input", { type: "checkbox", id: "schedule-enabled", checked: s.enabled, disabled: readOnly });
  const recurrence = recurrenceEditor(ctx.api, s, [], { disabled: readOnly });
  const messages = h("div", { class: "messages" });
  const state = h("p", { class: "lede" },
    s.enabled ? `On; next refresh ${when(s.nextRunAt)}.` : "Off: exports that follow it run only on demand.",
    s.updatedBy ? ` Last changed by ${s.updatedBy}, ${when(s.updatedAt)}.` : "");
  const form = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "schedule-title" },
    h("h1", { id: "schedule-title", tabindex: "-1" }, "Refresh schedule"),
    state,
    readOnly ? notice("Only administrators change the refresh schedule.", "info") : null,
    h("div", { class: "field", dataset: { path: "enabled" } },
      h("label", { class: "check", for: "schedule-enabled" }, enabled, " The refresh schedule is on"),
      h("p", { class: "field-error", role: "alert", hidden: true })),
    recurrence.element,
    formError(),
    messages,
    readOnly ? null : h("button", { type: "submit", class: "primary" }, "Save schedule"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const answer = (await ctx.api.request(
        `mutation SaveSchedule($input: UpdateRefreshScheduleInput!) {
          updateRefreshSchedule(input: $input) {
            refreshSchedule { enabled nextRunAt } userErrors { field message code } } }`,
        { input: { enabled: enabled.checked, ...recurrence.value() } },
      )).updateRefreshSchedule;
      if (answer.userErrors.length) {
        showUserErrors(form, answer.userErrors);
        return;
      }
      const saved = answer.refreshSchedule;
      state.textContent = saved.enabled
        ? `On; next refresh ${when(saved.nextRunAt)}.`
        : "Off: exports that follow it run only on demand.";
      messages.replaceChildren(notice(saved.enabled ? `Saved. Next refresh ${when(saved.nextRunAt)}.` : "Saved: the refresh schedule is off.", "success"));
    } catch (error) {
      showFormError(form, error.message);
    }
  });
  return form;
}
