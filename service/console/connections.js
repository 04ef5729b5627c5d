// Admin > Connections: the list, adding one (the way to connect when a destination offers
// several, privacy statement, OAuth), and each connection's actions (authorize, export
// user, rename, who may use it, remove).

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
      dataPrivacyAcceptedBy dataPrivacyAcceptedAt exportCount createdBy authKind
      destinationType { key displayName authKind }
    } }
  }
  destinationTypes {
    key displayName authKind
    authKinds {
      kind configured configurationProblem
      connectionSettings { name label type required secret description }
    }
  }
}`;

/** How each way to connect is named to admins. */
const AUTH_KIND_LABELS = {
  API_KEY: "With an API key",
  OAUTH2: "By signing in on the destination (OAuth)",
  NONE: "Nothing to connect",
};

const AUTH_KIND_FACTS = { API_KEY: "API key", OAUTH2: "OAuth", NONE: "none needed" };

const USER_ERRORS = "userErrors { field message code }";
const CONNECTION_FIELDS = "connection { id displayName status exportUser usableBy authKind }";

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
  const kindBox = h("div", { class: "auth-kinds" });
  const settingsBox = h("div", { class: "settings" });
  const settingInputs = new Map();
  const chosenType = () => types.find((t) => t.key === type.value);
  // The way to connect picked (the type's first configured one until the admin picks).
  let kind = null;
  const chosenKind = () => {
    const chosen = chosenType();
    return chosen ? chosen.authKinds.find((k) => k.kind === kind) || null : null;
  };
  const showKinds = () => {
    const chosen = chosenType();
    const kinds = chosen ? chosen.authKinds : [];
    const usable = kinds.find((k) => k.configured) || kinds[0];
    kind = usable ? usable.kind : null;
    if (kinds.length < 2) {
      kindBox.replaceChildren();
      return;
    }
    const radios = kinds.map((k) => {
      const id = `auth-kind-${k.kind}`;
      const radio = h("input", {
        type: "radio",
        name: "authKind",
        value: k.kind,
        id,
        checked: k.kind === kind,
        disabled: !k.configured,
      });
      radio.addEventListener("change", () => {
        kind = k.kind;
        showSettings();
      });
      const reason = k.configured
        ? null
        : h("p", { class: "hint why", id: `${id}-why` }, `Not available: ${k.configurationProblem}`);
      if (reason) radio.setAttribute("aria-describedby", reason.id);
      return h(
        "div",
        { class: "auth-kind" },
        h("label", { class: "check", for: id }, radio, ` ${AUTH_KIND_LABELS[k.kind] || k.kind}`),
        reason,
      );
    });
    kindBox.replaceChildren(
      h(
        "fieldset",
        { class: "field", dataset: { path: "authKind" } },
        h("legend", {}, "How to connect"),
        radios,
        h("p", { class: "field-error", role: "alert", hidden: true }),
      ),
    );
  };
  const showSettings = () => {
    settingInputs.clear();
    const picked = chosenKind();
    settingsBox.replaceChildren(
      ...(picked ? picked.connectionSettings : []).map((spec) => {
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
  type.addEventListener("change", () => {
    showKinds();
    showSettings();
  });
  showKinds();
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
    kindBox,
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
              // Only asked when there is a choice: a single way is the type's default, and
              // what keeps it from working is said beside the destination type.
              authKind: chosenType() && chosenType().authKinds.length > 1 ? kind : null,
            },
          },
        )
      ).createConnection;
      if (created.userErrors.length) {
        showUserErrors(form, created.userErrors);
        return;
      }
      if (created.connection.authKind === "OAUTH2") {
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
      c.authKind
        ? [h("dt", {}, "Connects by"), h("dd", { class: "auth-kind" }, AUTH_KIND_FACTS[c.authKind])]
        : null,
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
  const oauth = c.authKind === "OAUTH2";
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
