// Admin > Connections: the list, adding one (privacy statement, OAuth), and each
// connection's actions (authorize, export user, rename, who may use it, remove).

import {
  append,
  badge,
  clearErrors,
  field,
  formError,
  h,
  notice,
  select,
  showFormError,
  showUserErrors,
  when,
} from "./ui.js";

const CONNECTIONS = `
query ConsoleConnections {
  connections(first: 100) {
    totalCount
    edges { node {
      id displayName usableBy status statusMessage account exportUser ready
      dataPrivacyAcceptedBy dataPrivacyAcceptedAt exportCount createdBy
      destinationType { key displayName authKind }
    } }
  }
  destinationTypes {
    key displayName authKind
    connectionSettings { name label type required secret description }
  }
}`;

const USER_ERRORS = "userErrors { field message code }";
const CONNECTION_FIELDS = "connection { id displayName status exportUser usableBy }";

const USABLE_BY = [
  ["ADMINS", "Administrators only"],
  ["ADMINS_AND_CONTRIBUTORS", "Administrators and contributors"],
];

const PRIVACY_STATEMENT =
  "Exporting segments sends customer profiles (names, e-mail addresses and the other "
  + "mapped fields) to this destination, outside your company's compliance boundary. "
  + "The destination's own terms and privacy policy then apply to that data. You are "
  + "responsible for having the right to send it there; remove the connection at any "
  + "time to stop the flow.";

const PAUSES = "query Pauses { destinationPauses { destinationType displayName until reason } }";

/** Admins: destinations whose requests are paused (e.g. a spent daily quota), to lift. */
async function pausesBox(ctx) {
  const box = h("div", { class: "pauses" });
  let pauses;
  try {
    pauses = (await ctx.api.request(PAUSES)).destinationPauses;
  } catch (error) {
    return notice(`Pauses unknown: ${error.message}`, "warning");
  }
  for (const pause of pauses) {
    const lift = h("button", { type: "button" }, `Lift the pause of ${pause.displayName}`);
    lift.addEventListener("click", async () => {
      try {
        const answer = (await ctx.api.request(
          `mutation Lift($input: LiftDestinationPauseInput!) {
            liftDestinationPause(input: $input) { lifted { until } ${USER_ERRORS} } }`,
          { input: { destinationType: pause.destinationType } },
        )).liftDestinationPause;
        if (answer.userErrors.length) box.append(notice(answer.userErrors.map((e) => e.message).join(" "), "error"));
        else ctx.refresh();
      } catch (error) {
        box.append(notice(error.message, "error"));
      }
    });
    box.append(
      h("div", { class: "notice notice-warning", role: "status" },
        `Requests to ${pause.displayName} wait until ${when(pause.until)}: ${pause.reason} `, lift),
    );
  }
  return box;
}

export async function connectionsScreen(ctx) {
  const data = await ctx.api.request(CONNECTIONS);
  const connections = data.connections.edges.map((edge) => edge.node);
  const view = h("section", { "aria-labelledby": "connections-title" });
  const title = h("h1", { id: "connections-title", tabindex: "-1" }, "Connections");
  const messages = h("div", { class: "messages" });
  const returned = ctx.oauthReturn;
  if (returned) {
    ctx.oauthReturn = null;
    const named = connections.find((c) => c.id === returned.connection);
    const name = named ? named.displayName : "the connection";
    messages.append(
      returned.connected
        ? notice(`Connected: ${name} is authorized.`, "success")
        : notice(`${name} was not connected: ${returned.message} (${returned.error}).`, "error"),
    );
  }
  const list = h(
    "div",
    { class: "cards", id: "connection-list" },
    connections.length
      ? connections.map((c) => connectionCard(ctx, c))
      : h("p", { class: "empty" }, "No connection yet."),
  );
  // With no connection yet, adding one is the whole screen; later it waits folded below.
  let adding = null;
  if (ctx.can.manageConnections) {
    const form = addConnectionForm(ctx, data.destinationTypes);
    adding = connections.length
      ? h("details", { class: "add" }, h("summary", {}, "Add a connection"), form)
      : form;
  }
  append(
    view,
    title,
    h("p", { class: "lede" }, `${data.connections.totalCount} connection(s).`),
    messages,
    ctx.can.manageConnections ? await pausesBox(ctx) : null,
    connections.length ? list : [list, adding],
    connections.length ? adding : null,
  );
  return view;
}

function addConnectionForm(ctx, types) {
  const type = select(
    types.map((t) => [t.key, t.displayName]),
    types.length ? types[0].key : "",
    { name: "destinationType" },
  );
  const name = h("input", { type: "text", name: "displayName", required: true });
  const usableBy = select(USABLE_BY, "ADMINS", { name: "usableBy" });
  const accept = h("input", { type: "checkbox", name: "acceptDataPrivacy", id: "accept-privacy" });
  const settingsBox = h("div", { class: "settings" });
  const settingInputs = new Map();
  const showSettings = () => {
    settingInputs.clear();
    const chosen = types.find((t) => t.key === type.value);
    settingsBox.replaceChildren(
      ...(chosen ? chosen.connectionSettings : []).map((spec) => {
        const input = h("input", {
          type: spec.secret ? "password" : "text",
          name: spec.name,
          required: spec.required,
          autocomplete: "off",
        });
        settingInputs.set(spec.name, input);
        return field(spec.label + (spec.required ? " (required)" : ""), input, {
          hint: spec.description,
          path: ["settings", spec.name],
        }).wrapper;
      }),
    );
  };
  type.addEventListener("change", showSettings);
  showSettings();
  const acceptError = h("p", {
    class: "field-error",
    id: "accept-privacy-error",
    role: "alert",
    hidden: true,
  });
  accept.setAttribute("aria-describedby", "privacy-statement accept-privacy-error");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "add-connection-title" },
    h("h2", { id: "add-connection-title" }, "Add a connection"),
    field("Destination type", type, { path: ["destinationType"] }).wrapper,
    field("Display name", name, {
      hint: "Say what it is for, e.g. \"Newsletter account (marketing)\".",
      path: ["displayName"],
    }).wrapper,
    field("Who may use it", usableBy, {
      hint: "Contributors who may use it see only its name and type.",
      path: ["usableBy"],
    }).wrapper,
    settingsBox,
    h(
      "fieldset",
      { class: "privacy field", dataset: { path: "acceptDataPrivacy" } },
      h("legend", {}, "Data privacy and compliance"),
      h("p", { id: "privacy-statement" }, PRIVACY_STATEMENT),
      h("label", { class: "check", for: "accept-privacy" }, accept, " I accept this statement"),
      acceptError,
    ),
    formError(),
    h("button", { type: "submit", class: "primary" }, "Save and connect"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const settings = {};
    for (const [key, input] of settingInputs) if (input.value) settings[key] = input.value;
    try {
      const created = (
        await ctx.api.request(
          `mutation AddConnection($input: CreateConnectionInput!) {
            createConnection(input: $input) { ${CONNECTION_FIELDS} ${USER_ERRORS} } }`,
          {
            input: {
              destinationType: type.value,
              displayName: name.value,
              usableBy: usableBy.value,
              acceptDataPrivacy: accept.checked,
              settings: Object.keys(settings).length ? settings : null,
            },
          },
        )
      ).createConnection;
      if (created.userErrors.length) {
        showUserErrors(form, created.userErrors);
        return;
      }
      const chosen = types.find((t) => t.key === type.value);
      if (chosen && chosen.authKind === "oauth2") {
        await authorize(ctx, created.connection.id, form);
      } else {
        ctx.refresh();
      }
    } catch (error) {
      showFormError(form, error.message);
    }
  });
  return form;
}

/** Send the browser to the destination's OAuth page; /oauth/callback brings it back. */
async function authorize(ctx, connectionId, form) {
  const answer = (
    await ctx.api.request(
      `mutation Authorize($input: AuthorizeConnectionInput!) {
        authorizeConnection(input: $input) { authorizationUrl ${USER_ERRORS} } }`,
      { input: { connectionId } },
    )
  ).authorizeConnection;
  if (answer.userErrors.length) {
    showUserErrors(form, answer.userErrors);
    return;
  }
  window.location.assign(answer.authorizationUrl);
}

function connectionCard(ctx, c) {
  const titleId = `connection-${c.id}`;
  const actions = h("div", { class: "actions" });
  const panel = h("div", { class: "panel" });
  const messages = formError();
  const card = h(
    "article",
    { class: "card connection", "aria-labelledby": titleId, dataset: { id: c.id } },
    h("h2", { id: titleId }, c.displayName),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Type"),
      h("dd", {}, c.destinationType.displayName),
      h("dt", {}, "Status"),
      h("dd", { class: "status" }, c.status ? badge(c.status) : c.ready ? "ready" : "not ready"),
      c.statusMessage ? [h("dt", {}, "Why"), h("dd", {}, c.statusMessage)] : null,
      h("dt", {}, "Account"),
      h("dd", {}, c.account || "—"),
      h("dt", {}, "Export user"),
      h("dd", { class: "export-user" }, c.exportUser || "—"),
      h("dt", {}, "Who may use it"),
      h("dd", {}, USABLE_BY.find(([v]) => v === c.usableBy)[1]),
      c.dataPrivacyAcceptedBy
        ? [
          h("dt", {}, "Privacy accepted"),
          h("dd", {}, `${c.dataPrivacyAcceptedBy}, ${when(c.dataPrivacyAcceptedAt)}`),
        ]
        : null,
      c.exportCount !== null ? [h("dt", {}, "Exports"), h("dd", {}, String(c.exportCount))] : null,
    ),
    actions,
    messages,
    panel,
  );
  if (!ctx.can.manageConnections) return card;
  const button = (text, onclick) => h("button", { type: "button", onclick }, text);
  const act = async (query, input, key) => {
    try {
      const answer = (await ctx.api.request(query, { input }))[key];
      if (answer.userErrors.length) {
        messages.textContent = answer.userErrors.map((e) => e.message).join(" ");
        messages.hidden = false;
        return;
      }
      ctx.refresh();
    } catch (error) {
      messages.textContent = error.message;
      messages.hidden = false;
    }
  };
  const oauth = c.destinationType.authKind === "oauth2";
  const buttons = [
    oauth && button(c.status === "PENDING_AUTHORIZATION" ? "Connect" : "Re-authorize", async () => {
      try {
        await authorize(ctx, c.id, card);
      } catch (error) {
        messages.textContent = error.message;
        messages.hidden = false;
      }
    }),
    c.exportUser === ctx.viewer.sub
      ? null
      : button("Add yourself as export user", () =>
        act(
          `mutation AddExportUser($input: AddExportUserInput!) {
            addExportUser(input: $input) { ${CONNECTION_FIELDS} ${USER_ERRORS} } }`,
          { connectionId: c.id },
          "addExportUser",
        )),
    button("Edit", () => panel.replaceChildren(editForm(ctx, c, panel))),
    button("Remove…", () => panel.replaceChildren(removeForm(ctx, c, panel))),
  ];
  actions.append(...buttons.filter(Boolean));
  return card;
}

function editForm(ctx, c, panel) {
  const name = h("input", { type: "text", name: "displayName", value: c.displayName });
  const usableBy = select(USABLE_BY, c.usableBy, { name: "usableBy" });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": `Edit ${c.displayName}` },
    field("Display name", name, { path: ["displayName"] }).wrapper,
    field("Who may use it", usableBy, { path: ["usableBy"] }).wrapper,
    formError(),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", onclick: () => panel.replaceChildren() }, "Cancel"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = (
        await ctx.api.request(
          `mutation EditConnection($input: UpdateConnectionInput!) {
            updateConnection(input: $input) { ${CONNECTION_FIELDS} ${USER_ERRORS} } }`,
          { input: { id: c.id, displayName: name.value, usableBy: usableBy.value } },
        )
      ).updateConnection;
      if (answer.userErrors.length) showUserErrors(form, answer.userErrors);
      else ctx.refresh();
    } catch (error) {
      showFormError(form, error.message);
    }
  });
  queueMicrotask(() => name.focus());
  return form;
}

function removeForm(ctx, c, panel) {
  const used = c.exportCount || 0;
  const choices = used
    ? [
      ["DETACH", `Detach its ${used} export(s): they keep their settings and wait for another connection`],
      ["REMOVE", `Remove its ${used} export(s) and their run history too`],
    ]
    : [["FAIL_IF_USED", "No export uses it"]];
  const radios = choices.map(([value, label], index) => {
    const id = `remove-${c.id}-${value}`;
    return h(
      "label",
      { class: "check", for: id },
      h("input", { type: "radio", name: "exports", value, id, checked: index === 0 }),
      ` ${label}`,
    );
  });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": `Remove ${c.displayName}` },
    h(
      "fieldset",
      { class: "field", dataset: { path: "exports" } },
      h("legend", {}, `Remove ${c.displayName}? ${used} export(s) use it.`),
      radios,
      h("p", { class: "field-error", role: "alert", hidden: true }),
    ),
    formError(),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "danger" }, "Remove connection"),
      h("button", { type: "button", onclick: () => panel.replaceChildren() }, "Cancel"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const choice = form.querySelector("input[name=exports]:checked").value;
    try {
      const answer = (
        await ctx.api.request(
          `mutation RemoveConnection($input: RemoveConnectionInput!) {
            removeConnection(input: $input) { removedId ${USER_ERRORS} } }`,
          { input: { id: c.id, exports: choice } },
        )
      ).removeConnection;
      if (answer.userErrors.length) showUserErrors(form, answer.userErrors);
      else ctx.refresh();
    } catch (error) {
      showFormError(form, error.message);
    }
  });
  return form;
}
