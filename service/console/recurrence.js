// The recurrence editor (daily or weekly on chosen weekdays, a time zone, 1 to 4 times),
// shared by the refresh schedule and an export's own schedule, with the next run times
// the server computes for what is being edited.

import { field, h, select, when } from "./ui.js";

/** An instant as the wall clock of `zone` shows it (the zone the schedule runs in). */
function inZone(iso, zone) {
  try {
    const text = new Date(iso).toLocaleString(undefined, {
      timeZone: zone,
      weekday: "short",
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
    return `${text} (${zone})`;
  } catch {
    return when(iso);
  }
}

const WEEKDAYS = [
  ["MONDAY", "Mon"],
  ["TUESDAY", "Tue"],
  ["WEDNESDAY", "Wed"],
  ["THURSDAY", "Thu"],
  ["FRIDAY", "Fri"],
  ["SATURDAY", "Sat"],
  ["SUNDAY", "Sun"],
];
const MAX_TIMES = 4;

const UPCOMING = `
query UpcomingRuns($recurrence: RecurrenceInput!) {
  upcomingRunTimes(recurrence: $recurrence, count: 5)
}`;

/**
 * {element, value()} for a recurrence; `path` prefixes the userError paths it shows
 * (["schedule", "recurrence"] in an export, [] for the refresh schedule).
 */
export function recurrenceEditor(api, initial, path, { disabled = false } = {}) {
  const start = initial || {
    frequency: "DAILY",
    weekdays: [],
    times: ["06:00"],
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
  };
  const frequency = select(
    [
      ["DAILY", "Daily"],
      ["WEEKLY", "Weekly, on chosen days"],
    ],
    start.frequency,
    { name: "frequency", disabled },
  );
  const days = WEEKDAYS.map(([value, label]) => {
    const id = `${path.join("-") || "refresh"}-day-${value}`;
    return {
      value,
      box: h("input", {
        type: "checkbox",
        id,
        value,
        checked: start.weekdays.includes(value),
        disabled,
      }),
      label,
      id,
    };
  });
  const weekdays = h(
    "fieldset",
    { class: "field weekdays", dataset: { path: [...path, "weekdays"].join(".") } },
    h("legend", {}, "Weekdays"),
    h(
      "div",
      { class: "day-row" },
      days.map((d) => h("label", { class: "check", for: d.id }, d.box, ` ${d.label}`)),
    ),
    h("p", { class: "field-error", role: "alert", hidden: true }),
  );
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const listId = `${path.join("-") || "refresh"}-zones`;
  const timeZone = h("input", {
    type: "text",
    name: "timeZone",
    value: start.timeZone,
    list: listId,
    autocomplete: "off",
    disabled,
  });
  const zoneList = h("datalist", { id: listId }, zones.map((z) => h("option", { value: z })));
  const timesBox = h("div", { class: "times" });
  const timeInputs = [];
  const addTime = h("button", { type: "button", disabled }, "Add a time");
  const renderTimes = () => {
    timesBox.replaceChildren(
      ...timeInputs.map((input, index) => {
        const remove = h(
          "button",
          {
            type: "button",
            class: "link",
            disabled: disabled || timeInputs.length === 1,
            "aria-label": `Remove time ${index + 1}`,
          },
          "Remove",
        );
        remove.addEventListener("click", () => {
          timeInputs.splice(index, 1);
          renderTimes();
          changed();
        });
        const wrapped = field(`Time ${index + 1}`, input, {
          path: [...path, "times", String(index)],
        }).wrapper;
        wrapped.append(remove);
        return wrapped;
      }),
    );
    addTime.disabled = disabled || timeInputs.length >= MAX_TIMES;
  };
  const newTime = (value) => {
    const input = h("input", { type: "time", value, disabled, required: true });
    input.addEventListener("change", () => changed());
    timeInputs.push(input);
  };
  start.times.forEach(newTime);
  addTime.addEventListener("click", () => {
    newTime("18:00");
    renderTimes();
    changed();
    timeInputs[timeInputs.length - 1].focus();
  });
  renderTimes();

  const upcoming = h("ol", { class: "upcoming", "aria-live": "polite" });
  const upcomingNote = h("p", { class: "hint upcoming-note" });

  const showDays = () => {
    weekdays.hidden = frequency.value !== "WEEKLY";
  };
  const value = () => ({
    frequency: frequency.value,
    weekdays: frequency.value === "WEEKLY" ? days.filter((d) => d.box.checked).map((d) => d.value) : [],
    times: timeInputs.map((input) => input.value),
    timeZone: timeZone.value.trim(),
  });
  let asked = 0;
  const changed = async () => {
    showDays();
    const mine = ++asked;
    try {
      const data = await api.request(UPCOMING, { recurrence: value() });
      if (mine !== asked) return;
      upcomingNote.textContent = "";
      upcoming.replaceChildren(
        ...data.upcomingRunTimes.map((t) => h("li", {}, h("time", { datetime: t }, inZone(t, value().timeZone)))),
      );
    } catch (error) {
      if (mine !== asked) return;
      upcoming.replaceChildren();
      upcomingNote.textContent = `No run times: ${error.message}`;
    }
  };
  frequency.addEventListener("change", changed);
  timeZone.addEventListener("change", changed);
  for (const d of days) d.box.addEventListener("change", changed);
  showDays();
  changed();

  const element = h(
    "div",
    { class: "recurrence" },
    field("Frequency", frequency, { path: [...path, "frequency"] }).wrapper,
    weekdays,
    field("Time zone", timeZone, {
      hint: "An IANA name, e.g. Europe/Paris.",
      path: [...path, "timeZone"],
    }).wrapper,
    zoneList,
    h(
      "fieldset",
      { class: "field", dataset: { path: [...path, "times"].join(".") } },
      h("legend", {}, `Times of day (up to ${MAX_TIMES})`),
      timesBox,
      addTime,
      h("p", { class: "field-error", role: "alert", hidden: true }),
    ),
    h("section", { class: "next-runs", "aria-label": "Next run times" },
      h("h3", {}, "Next run times"), upcoming, upcomingNote),
  );
  return { element, value };
}
