// The socialcart demo page: pick a person, see their recommendations and why, post and
// watch the list change, share a product with friends, shop as a group.
import { api, ApiError, getKey, setKey } from "./api.js";
import { productCard, skeletonCards } from "./cards.js";
import { $, busy, h } from "./dom.js";
import { groupPanel } from "./group.js";
import { renderFollowing, renderPeople, renderPosts, renderProfile } from "./person.js";
import { productView } from "./product.js";

const K = 10;

const state = {
  user: null,
  following: [],
  recIds: [],
  loadToken: 0,
  recsToken: 0,
  config: null,
};

// ------------------------------------------------------------------ messages
function toast(message, { kind = "error", action } = {}) {
  const box = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { class: "toast-text", text: message }),
  );
  if (action) {
    const b = h("button", { type: "button", class: "btn btn-small", text: action.label });
    b.addEventListener("click", () => {
      box.remove();
      action.run();
    });
    box.append(b);
  }
  const close = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-label": "Dismiss", text: "✕" });
  close.addEventListener("click", () => box.remove());
  box.append(close);
  $("#toasts").append(box);
  setTimeout(() => box.remove(), kind === "error" ? 12000 : 5000);
}

function showError(err) {
  if (err?.name === "AbortError") return;
  const message = err instanceof ApiError ? err.message : String(err?.message || err);
  if (err instanceof ApiError && err.status === 401) {
    toast(`Not allowed: ${message}`, { action: { label: "Enter API key", run: () => openKeyDialog(message) } });
  } else {
    toast(message);
  }
}

// ------------------------------------------------------------------ API key
const keyDialog = $("#key-dialog");

function openKeyDialog(error) {
  const err = $("#key-error");
  err.hidden = !error;
  err.textContent = error || "";
  $("#key-input").value = getKey();
  keyDialog.showModal();
  $("#key-input").focus();
}

function renderKeyButton() {
  const has = Boolean(getKey());
  const button = $("#key-button");
  button.textContent = has ? "API key ✓" : "API key";
  button.classList.toggle("key-set", has);
  const needed = state.config?.write_key_required && !has;
  const banner = $("#banner");
  banner.hidden = !needed;
  if (needed) {
    const b = h("button", { type: "button", class: "btn btn-small", text: "Enter key" });
    b.addEventListener("click", () => openKeyDialog());
    banner.replaceChildren(
      h("span", {}, "Posting needs the API key that ", h("code", { text: "make run" }), " printed."),
      b,
    );
  }
}

function wireKeyDialog() {
  $("#key-button").addEventListener("click", () => openKeyDialog());
  keyDialog.addEventListener("click", (event) => {
    if (event.target === keyDialog || event.target.closest("[data-close]")) keyDialog.close();
  });
  $("#key-form").addEventListener("submit", () => {
    setKey($("#key-input").value.trim());
    renderKeyButton();
    toast(getKey() ? "API key saved in this browser." : "API key forgotten.", { kind: "info" });
  });
  $("#key-clear").addEventListener("click", () => {
    setKey("");
    $("#key-input").value = "";
    renderKeyButton();
    keyDialog.close();
  });
}

// ------------------------------------------------------------------ people
async function searchPeople(q) {
  const list = $("#people-list");
  const hint = $("#people-hint");
  busy(list, true);
  hint.textContent = q ? `Searching “${q}”…` : "Loading people…";
  try {
    const people = (await api("/v1/demo/people", { query: { q, limit: q ? 12 : 8 } })).data;
    renderPeople(list, people, selectUser, state.user?.user_id);
    hint.textContent = q
      ? people.length
        ? `People matching “${q}”:`
        : `Nobody matches “${q}”.`
      : "Popular people — pick someone to shop as them:";
    return people;
  } catch (err) {
    hint.textContent = "";
    showError(err);
    return [];
  } finally {
    busy(list, false);
  }
}

async function selectUser(userId) {
  const token = ++state.loadToken;
  history.replaceState(null, "", `#user=${userId}`);
  $("#profile-panel").hidden = false;
  const profile = $("#profile");
  busy(profile, true);
  profile.replaceChildren(h("p", { class: "status loading", text: "Loading profile…" }));
  let user;
  try {
    user = await api(`/v1/users/${userId}`);
  } catch (err) {
    if (token === state.loadToken) profile.replaceChildren(h("p", { class: "error", text: err.message }));
    showError(err);
    return;
  } finally {
    busy(profile, false);
  }
  if (token !== state.loadToken) return;
  state.user = user;
  state.recIds = [];
  document.body.classList.add("has-user");
  document.title = `@${user.handle} — socialcart`;
  renderProfile(profile, user);
  for (const el of document.querySelectorAll("#people-list .person")) {
    el.toggleAttribute("aria-current", Number(el.dataset.userId) === user.user_id);
  }
  $("#compose").hidden = false;
  $("#compose-handle").textContent = `@${user.handle}`;
  $("#filters").hidden = false;
  $("#recs-title").textContent = `Recommended for @${user.handle}`;
  group.setCurrent(user);
  await Promise.all([loadFollowing(user, token), loadPosts(user, token), loadRecs()]);
}

async function loadFollowing(user, token) {
  const panel = $("#following-panel");
  const list = $("#following-list");
  panel.hidden = false;
  busy(list, true);
  try {
    const following = await api(`/v1/users/${user.user_id}/following`, { query: { limit: 30 } });
    if (token !== state.loadToken) return;
    state.following = following.data;
    $("#following-title").textContent = `Following (${following.total})`;
    renderFollowing(list, following, selectUser);
  } catch (err) {
    showError(err);
  } finally {
    busy(list, false);
  }
}

async function loadPosts(user, token) {
  const panel = $("#posts-panel");
  const list = $("#posts-list");
  busy(list, true);
  try {
    const posts = await api(`/v1/demo/users/${user.user_id}/posts`, { query: { limit: 8 } });
    if (token !== state.loadToken) return;
    panel.hidden = false;
    renderPosts(list, posts.data, { onOpenProduct: openProduct, onPick: selectUser });
  } catch (err) {
    showError(err);
  } finally {
    busy(list, false);
  }
}

// ------------------------------------------------------------------ recommendations
function filterQuery() {
  const category = $("#filter-category").value;
  return {
    k: K,
    category: category || null,
    min_price: $("#filter-min").value,
    max_price: $("#filter-max").value,
  };
}

function filtersActive() {
  const q = filterQuery();
  return Boolean(q.category || q.min_price || q.max_price);
}

async function loadRecs() {
  const user = state.user;
  if (!user) return;
  const token = ++state.recsToken;
  const list = $("#recs-list");
  const status = $("#recs-status");
  busy(list, true);
  status.textContent = "Loading recommendations…";
  status.classList.add("loading");
  list.replaceChildren(...skeletonCards(4));
  try {
    const recs = await api(`/v1/users/${user.user_id}/recommendations`, { query: filterQuery() });
    if (token !== state.recsToken) return;
    showRecs(recs, null);
  } catch (err) {
    if (token !== state.recsToken) return;
    list.replaceChildren();
    status.textContent = `Could not load recommendations: ${err.message}`;
    showError(err);
  } finally {
    if (token === state.recsToken) {
      busy(list, false);
      status.classList.remove("loading");
    }
  }
}

/** Render a list; `previous` (ids before a post) marks new and risen items. */
function showRecs(recs, previous) {
  const list = $("#recs-list");
  const status = $("#recs-status");
  const before = previous ? new Map(previous.map((id, i) => [id, i])) : null;
  let changed = 0;
  const cards = recs.data.map((item, i) => {
    let change = null;
    if (before) {
      const id = item.product.product_id;
      change = before.has(id) ? { isNew: false, movedBy: before.get(id) - i } : { isNew: true };
      if (change.isNew) changed += 1;
    }
    return productCard(item, { onOpen: openProduct, change });
  });
  list.replaceChildren(...cards);
  state.recIds = recs.data.map((item) => item.product.product_id);
  if (!recs.data.length) {
    status.textContent = filtersActive()
      ? "Nothing matches these filters — try a wider price range or another category."
      : "No recommendations for this person.";
  } else if (before) {
    status.textContent = changed
      ? `Your post changed the list: ${changed} new product${changed === 1 ? "" : "s"} (highlighted).`
      : "Your post did not change the list.";
  } else {
    status.textContent = `${recs.count} products, each with the reasons behind it.`;
  }
}

function wireFilters() {
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadRecs();
  });
  $("#filter-reset").addEventListener("click", () => {
    $("#filters").reset();
    loadRecs();
  });
}

async function loadCategories() {
  const categories = await api("/v1/demo/categories");
  const select = $("#filter-category");
  for (const c of categories.data) {
    select.append(h("option", { value: c.name, text: `${c.name} (${c.products})` }));
  }
}

// ------------------------------------------------------------------ compose
function mentionedIds(text) {
  const handles = new Set([...text.matchAll(/@([\w\u4e00-\u9fff-]+)/gu)].map((m) => m[1].toLowerCase()));
  return state.following.filter((p) => handles.has(p.handle.toLowerCase())).map((p) => p.user_id);
}

function wireCompose() {
  const form = $("#compose");
  const text = $("#compose-text");
  const count = $("#compose-count");
  const submit = $("#compose-submit");
  text.addEventListener("input", () => {
    count.textContent = `${text.value.length} / 2000`;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = state.user;
    const body = text.value.trim();
    if (!user || !body) return;
    submit.disabled = true;
    submit.textContent = "Posting…";
    const previous = state.recIds.slice();
    try {
      const answer = await api("/v1/posts", {
        method: "POST",
        body: { user_id: user.user_id, text: body, mentions: mentionedIds(body), k: K },
      });
      text.value = "";
      count.textContent = "0 / 2000";
      await afterPost(answer, previous);
    } catch (err) {
      showError(err);
    } finally {
      submit.disabled = false;
      submit.textContent = "Post";
    }
  });
}

/** A post was stored: refresh the posts and show the refreshed recommendations. */
async function afterPost(answer, previous) {
  const user = state.user;
  if (!user || answer.recommendations.user_id !== user.user_id) return;
  toast(`Posted as @${user.handle} (post ${answer.post_id}).`, { kind: "info" });
  loadPosts(user, state.loadToken);
  if (filtersActive()) {
    // The answer is unfiltered: ask again with the page's filters.
    const recs = await api(`/v1/users/${user.user_id}/recommendations`, { query: filterQuery() });
    showRecs(recs, previous);
  } else {
    state.recsToken += 1; // a load in flight must not overwrite the answer
    showRecs(answer.recommendations, previous);
  }
}

// ------------------------------------------------------------------ start
const openProduct = productView({
  dialog: $("#product-dialog"),
  body: $("#product-body"),
  title: $("#product-title"),
  currentUser: () => state.user,
  onPosted: (answer) => afterPost(answer, state.recIds.slice()).catch(showError),
  onError: showError,
});

const group = groupPanel({
  currentUser: () => state.user,
  onOpen: (id) => openProduct(id),
  onError: showError,
});

async function start() {
  wireKeyDialog();
  wireFilters();
  wireCompose();
  $("#search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = $("#search-input").value.trim();
    const people = await searchPeople(q);
    const wanted = q.replace(/^@/, "").toLowerCase();
    const exact = people.find((p) => p.handle.toLowerCase() === wanted || String(p.user_id) === wanted);
    if (exact) selectUser(exact.user_id);
    else $("#people-panel").scrollIntoView({ block: "nearest" });
  });
  try {
    state.config = await api("/v1/demo/config");
  } catch (err) {
    showError(err);
  }
  renderKeyButton();
  window.addEventListener("hashchange", () => {
    const id = /user=(\d+)/.exec(location.hash)?.[1];
    if (id && Number(id) !== state.user?.user_id) selectUser(Number(id));
  });
  const match = /user=(\d+)/.exec(location.hash);
  await Promise.all([
    searchPeople(""),
    loadCategories().catch(showError),
    group.loadCircles().catch(showError),
    match ? selectUser(Number(match[1])) : null,
  ]);
  document.body.dataset.ready = "true";
}

start();
