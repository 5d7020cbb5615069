// Product cards and reason badges.
import { categoryParts, colourOf, h, price } from "./dom.js";

const REASON_KIND = {
  friends_purchased: "social",
  friends_engaged: "social",
  friends_posted: "social",
  mutual_friends: "social",
  close_contact: "social",
  follows: "social",
  category_buyer: "similar",
  category_interest: "similar",
  category_poster: "similar",
  similar_taste: "similar",
  kol_pick: "kol",
  post_match: "post",
  similar_to_purchased: "similar",
  collaborative: "similar",
  similar_text: "similar",
  bought_together: "similar",
  popular_in_your_category: "trend",
  trending_in_segment: "trend",
  trending: "trend",
  group_fit: "group",
};

const REASON_ICON = {
  social: "♥",
  kol: "★",
  post: "✎",
  similar: "⇄",
  trend: "▲",
  group: "◎",
  other: "•",
};

/** One reason as a badge: the service's sentence, shown as text. */
export function reasonBadge(reason) {
  const kind = REASON_KIND[reason.type] || "other";
  return h(
    "li",
    { class: `reason reason-${kind}`, dataset: { type: reason.type || "" } },
    h("span", { class: "reason-icon", "aria-hidden": "true", text: REASON_ICON[kind] }),
    h("span", { class: "reason-text", text: reason.text || reason.type }),
  );
}

export function reasonList(reasons, { max = 3 } = {}) {
  const list = h("ul", { class: "reasons", "aria-label": "Why" });
  const shown = reasons.slice(0, max);
  for (const r of shown) list.append(reasonBadge(r));
  if (reasons.length > max) {
    const rest = reasons.slice(max);
    const more = h("button", {
      type: "button",
      class: "reason reason-more",
      "aria-label": `Show ${rest.length} more reasons`,
      text: `+${rest.length} more`,
    });
    more.addEventListener("click", () => {
      more.parentElement.replaceWith(...rest.map(reasonBadge));
    });
    list.append(h("li", { class: "reason-more-item" }, more));
  }
  return list;
}

/** A square tile standing in for the product photo: the category's colour and initials. */
export function productTile(product) {
  const parts = categoryParts(product.category_path);
  const leaf = parts[parts.length - 1] || "?";
  const tile = h(
    "div",
    { class: "tile", "aria-hidden": "true" },
    h("span", { class: "tile-text", text: leaf }),
  );
  tile.style.setProperty("--tile-bg", colourOf(parts[0] || leaf));
  return tile;
}

/**
 * A recommended product. `onOpen(productId)` opens its view; `change` is
 * `{isNew, movedBy}` after a refresh.
 */
export function productCard(item, { onOpen, change, extra } = {}) {
  const p = item.product;
  const parts = categoryParts(p.category_path);
  const classes = ["card"];
  if (change?.isNew) classes.push("card-new");
  else if (change?.movedBy > 0) classes.push("card-up");
  const card = h("li", {
    class: classes.join(" "),
    dataset: { productId: p.product_id, rank: item.rank },
  });
  const title = h("button", {
    type: "button",
    class: "card-title",
    text: p.title,
    title: `Open ${p.title}`,
  });
  title.addEventListener("click", () => onOpen?.(p.product_id));
  const flag = change?.isNew
    ? h("span", { class: "card-flag", text: "New" })
    : change?.movedBy > 0
      ? h("span", { class: "card-flag card-flag-up", text: `↑ ${change.movedBy}` })
      : null;
  card.append(
    productTile(p),
    h(
      "div",
      { class: "card-body" },
      h("div", { class: "card-top" }, title, flag),
      h(
        "div",
        { class: "card-meta" },
        h("span", { class: "price", text: price(p.price) }),
        h("span", { class: "shop", text: p.shop_name || `shop ${p.shop_id}` }),
      ),
      h("div", { class: "category", text: parts.join(" › ") }),
      reasonList(item.reasons || []),
      extra || null,
    ),
  );
  return card;
}

/** Placeholder cards while a list loads. */
export function skeletonCards(n = 4) {
  return Array.from({ length: n }, () =>
    h(
      "li",
      { class: "card card-skeleton", "aria-hidden": "true" },
      h("div", { class: "tile" }),
      h("div", { class: "card-body" }, h("div", { class: "sk-line" }), h("div", { class: "sk-line short" })),
    ),
  );
}
