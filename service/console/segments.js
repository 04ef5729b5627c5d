// Data > Segments: the segments with their member counts (read only here).

import { field, h, table } from "./ui.js";

const SEGMENTS = `
query ConsoleSegments($search: String) {
  segments(first: 100, search: $search) {
    totalCount
    edges { node { id name description memberCount updatedAt } }
  }
}`;

export async function segmentsScreen(ctx) {
  const search = h("input", { type: "search", name: "search", autocomplete: "off" });
  const results = h("div", { class: "results", "aria-live": "polite" });
  const load = async () => {
    const data = (await ctx.api.request(SEGMENTS, { search: search.value || null })).segments;
    results.replaceChildren(
      h("p", { class: "lede" }, `${data.totalCount} segment(s).`),
      table(
        "Segments",
        ["Name", "Description", "Members"],
        data.edges.map(({ node }) => [node.name, node.description || "—", h("span", { class: "num" }, String(node.memberCount))]),
        search.value ? "No segment matches." : "No segment yet: load some with segport import.",
      ),
    );
  };
  const form = h("form", { class: "search", role: "search" },
    field("Search segments", search).wrapper,
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  await load();
  return h("section", { "aria-labelledby": "segments-title" },
    h("h1", { id: "segments-title", tabindex: "-1" }, "Segments"), form, results);
}
