// The group panel: choose several people, get products for the group.
import { api } from "./api.js";
import { productCard, skeletonCards } from "./cards.js";
import { $, avatar, busy, h } from "./dom.js";

const MAX_MEMBERS = 100;

/** `ctx`: { currentUser(): user|null, onOpen(productId), onError(err) }. */
export function groupPanel(ctx) {
  const members = new Map(); // user_id -> handle
  const list = $("#group-members");
  const addCurrent = $("#group-add-current");
  const addForm = $("#group-add-form");
  const addInput = $("#group-add-input");
  const suggestions = $("#group-suggestions");
  const circle = $("#group-circle");
  const submit = $("#group-submit");
  const status = $("#group-status");
  const results = $("#group-results");

  function render() {
    list.replaceChildren(
      ...[...members].map(([id, handle]) => {
        const remove = h("button", {
          type: "button",
          class: "chip-remove",
          "aria-label": `Remove @${handle} from the group`,
          text: "×",
        });
        remove.addEventListener("click", () => {
          members.delete(id);
          render();
        });
        return h(
          "li",
          { class: "chip", dataset: { userId: id } },
          avatar(handle, "avatar-small"),
          h("span", { text: `@${handle}` }),
          remove,
        );
      }),
    );
    if (!members.size) list.append(h("li", { class: "muted", text: "No one chosen yet." }));
    submit.disabled = members.size < 2;
    submit.textContent =
      members.size < 2 ? "Choose at least 2 people" : `Find products for ${members.size} people`;
  }

  function add(id, handle) {
    if (members.size >= MAX_MEMBERS) return;
    members.set(id, handle);
    render();
  }

  addCurrent.addEventListener("click", () => {
    const user = ctx.currentUser();
    if (user) add(user.user_id, user.handle);
  });

  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = addInput.value.trim();
    suggestions.replaceChildren();
    if (!q) return;
    try {
      const people = (await api("/v1/demo/people", { query: { q, limit: 5 } })).data;
      const wanted = q.replace(/^@/, "").toLowerCase();
      const exact = people.find((p) => p.handle.toLowerCase() === wanted || String(p.user_id) === wanted);
      if (exact) {
        add(exact.user_id, exact.handle);
        addInput.value = "";
        return;
      }
      if (!people.length) {
        suggestions.append(h("li", { class: "muted", text: `Nobody matches “${q}”.` }));
        return;
      }
      for (const p of people) {
        const b = h("button", { type: "button", class: "link", text: `+ @${p.handle}` });
        b.addEventListener("click", () => {
          add(p.user_id, p.handle);
          suggestions.replaceChildren();
          addInput.value = "";
        });
        suggestions.append(h("li", {}, b));
      }
    } catch (err) {
      ctx.onError(err);
    }
  });

  circle.addEventListener("change", () => {
    const option = circle.selectedOptions[0];
    if (!option?.value) return;
    members.clear();
    for (const m of JSON.parse(option.dataset.members)) members.set(m.user_id, m.handle);
    render();
  });

  submit.addEventListener("click", async () => {
    const strategy = $('input[name="strategy"]:checked').value;
    submit.disabled = true;
    status.textContent = "Finding products for the group…";
    busy(results, true);
    results.replaceChildren(...skeletonCards(2));
    try {
      const answer = await api("/v1/groups/recommendations", {
        method: "POST",
        body: { user_ids: [...members.keys()], k: 6, strategy },
      });
      status.textContent = `${answer.count} products for ${answer.user_ids.length} people (${strategy.replace("_", " ")})`;
      results.replaceChildren(
        ...answer.data.map((item) =>
          productCard(item, { onOpen: ctx.onOpen, extra: memberBars(item.member_scores) }),
        ),
      );
    } catch (err) {
      status.textContent = "";
      results.replaceChildren();
      ctx.onError(err);
    } finally {
      busy(results, false);
      submit.disabled = members.size < 2;
    }
  });

  function memberBars(scores) {
    const top = Math.max(...scores.map((s) => s.score), 1e-9);
    return h(
      "ul",
      { class: "member-bars", "aria-label": "How much each member likes it" },
      scores.map((s) => {
        const bar = h("span", { class: "bar-fill" });
        bar.style.setProperty("--fill", `${Math.max(4, (100 * s.score) / top).toFixed(0)}%`);
        return h(
          "li",
          {},
          h("span", { class: "bar-label", text: `@${members.get(s.user_id) ?? s.user_id}` }),
          h("span", { class: "bar" }, bar),
        );
      }),
    );
  }

  async function loadCircles() {
    const groups = await api("/v1/demo/groups", { query: { limit: 50 } });
    if (!groups.data.length) return;
    for (const g of groups.data) {
      circle.append(
        h("option", {
          value: String(g.group_id),
          dataset: { members: JSON.stringify(g.members) },
          text: `${g.name} (${g.members.length})`,
        }),
      );
    }
    $("#group-circle-label").hidden = false;
  }

  render();
  return {
    setCurrent(user) {
      addCurrent.disabled = !user;
      addCurrent.textContent = user ? `Add @${user.handle}` : "Add current person";
    },
    loadCircles,
  };
}
