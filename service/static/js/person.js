// A person: the people list, their profile, who they follow and their recent posts.
import { avatar, h, kolBadge, timeAgo } from "./dom.js";

const GENDER = { female: "Female", male: "Male" };
const DEVICE = { mobile: "on mobile", desktop: "on desktop" };

function personButton(person, onPick, { current = false } = {}) {
  const button = h(
    "button",
    {
      type: "button",
      class: "person",
      "aria-current": current ? "true" : null,
      dataset: { userId: person.user_id },
    },
    avatar(person.handle),
    h("span", { class: "person-handle", text: `@${person.handle}` }),
    person.is_kol ? kolBadge() : null,
  );
  button.addEventListener("click", () => onPick(person.user_id));
  return button;
}

export function renderPeople(list, people, onPick, currentId) {
  list.replaceChildren(
    ...people.map((p) =>
      h("li", {}, personButton(p, onPick, { current: p.user_id === currentId })),
    ),
  );
}

export function renderProfile(root, user) {
  const facts = [
    GENDER[user.gender],
    user.age_band && user.age_band !== "unknown" ? `aged ${user.age_band}` : null,
    user.city_tier ? `tier-${user.city_tier} city` : null,
    DEVICE[user.device],
  ].filter(Boolean);
  const since = user.signup_ts
    ? new Date(user.signup_ts).toLocaleDateString(undefined, { year: "numeric", month: "short" })
    : null;
  root.replaceChildren(
    h("div", { class: "profile-cover", "aria-hidden": "true" }),
    h(
      "div",
      { class: "profile-main" },
      avatar(user.handle, "avatar-large"),
      h(
        "div",
        { class: "profile-name" },
        h("span", { id: "profile-handle", class: "handle", text: `@${user.handle}` }),
        user.is_kol ? kolBadge() : null,
      ),
      h("p", { class: "profile-facts muted", text: facts.join(" · ") || "no demographics" }),
      h(
        "p",
        { class: "profile-stats" },
        h("strong", { text: String(user.following_count) }),
        " following",
        since ? h("span", { class: "muted", text: ` · joined ${since}` }) : null,
        h("span", { class: "muted", text: ` · id ${user.user_id}` }),
      ),
    ),
  );
}

export function renderFollowing(list, following, onPick) {
  if (!following.data.length) {
    list.replaceChildren(h("li", { class: "muted", text: "Follows nobody yet." }));
    return;
  }
  const items = following.data.map((p) => h("li", {}, personButton(p, onPick)));
  if (following.total > following.count) {
    items.push(h("li", { class: "muted", text: `and ${following.total - following.count} more` }));
  }
  list.replaceChildren(...items);
}

/** Post text with Weibo-style #topic# and @handle parts highlighted (all as text). */
function postText(text) {
  const out = h("p", { class: "post-text" });
  const pattern = /(#[^#\s][^#]{0,62}#|@[\w\u4e00-\u9fff-]+)/gu;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) out.append(text.slice(last, match.index));
    const cls = match[0].startsWith("#") ? "topic" : "mention";
    out.append(h("span", { class: cls, text: match[0] }));
    last = match.index + match[0].length;
  }
  if (last < text.length) out.append(text.slice(last));
  return out;
}

export function renderPosts(list, posts, { onOpenProduct, onPick }) {
  if (!posts.length) {
    list.replaceChildren(h("li", { class: "muted", text: "No posts yet." }));
    return;
  }
  list.replaceChildren(
    ...posts.map((post) => {
      // Tags written Weibo-style (#topic#) are already highlighted in the text.
      const tags = post.hashtags
        .filter((t) => !post.text.includes(`#${t}#`))
        .map((t) => h("li", { class: "tag", text: `#${t}` }));
      // Mentions written as @handle are already highlighted in the text.
      const mentions = post.mentions
        .filter((m) => !post.text.includes(`@${m.handle}`))
        .map((m) => {
          const b = h("button", { type: "button", class: "link", text: `@${m.handle ?? m.user_id}` });
          b.addEventListener("click", () => onPick(m.user_id));
          return h("li", {}, b);
        });
      let product = null;
      if (post.product_id !== null && post.product_id !== undefined) {
        product = h("button", { type: "button", class: "link post-product", text: "↗ linked product" });
        product.addEventListener("click", () => onOpenProduct(post.product_id));
      }
      return h(
        "li",
        { class: post.live ? "post post-live" : "post", dataset: { postId: post.post_id } },
        postText(post.text),
        tags.length || mentions.length ? h("ul", { class: "post-extras" }, tags, mentions) : null,
        h(
          "div",
          { class: "post-foot muted" },
          h("time", { datetime: post.created_at || "", text: timeAgo(post.created_at) }),
          post.live ? h("span", { class: "live-badge", text: "posted here" }) : null,
          product,
        ),
      );
    }),
  );
}
