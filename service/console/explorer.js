// The developer explorer: an operation, its variables and a token, sent to /graphql over
// HTTP, or over graphql-transport-ws for a subscription. No code from elsewhere.

import { Api } from "./gql.js";

const TOKEN_KEY = "segport.console.token";
const token = document.getElementById("token");
const query = document.getElementById("query");
const variables = document.getElementById("variables");
const result = document.getElementById("result");
const stopButton = document.getElementById("stop");
const form = document.getElementById("explorer");

token.value = sessionStorage.getItem(TOKEN_KEY) || "";
token.addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, token.value.trim()));

const api = new Api("/graphql", () => token.value.trim(), () => {});
let stop = null;

function show(value) {
  result.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (stop) stop();
  let vars;
  try {
    vars = JSON.parse(variables.value || "{}");
  } catch (error) {
    show(`The variables are not JSON: ${error.message}`);
    return;
  }
  const text = query.value;
  if (/^\s*subscription\b/.test(text)) {
    const lines = [];
    stopButton.disabled = false;
    stop = api.subscribe(text, vars, {
      next: (data) => {
        lines.push(JSON.stringify(data));
        show(lines.join("\n"));
      },
      error: (error) => show(`${lines.join("\n")}\nerror (${error.code}): ${error.message}`),
      complete: () => show(`${lines.join("\n")}\n(complete)`),
    });
    return;
  }
  try {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${token.value.trim()}`,
      },
      body: JSON.stringify({ query: text, variables: vars }),
    });
    show(await response.json());
  } catch (error) {
    show(`segport does not answer: ${error.message}`);
  }
});

stopButton.addEventListener("click", () => {
  if (stop) stop();
  stop = null;
  stopButton.disabled = true;
});

document.getElementById("introspect").addEventListener("click", () => {
  query.value = "query { __schema { types { name kind description } } }";
  variables.value = "{}";
});
