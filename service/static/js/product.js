// The product view: details, similar products and "share with friends" (one-click @-mentions).
import { api } from "./api.js";
import { reasonList, productTile } from "./cards.js";
import { avatar, categoryParts, h, price } from "./dom.js";

/**
 * `ctx`: { dialog, body, title, currentUser(): user|null, onPosted(answer), onError(err) }.
 * Returns `open(productId)`.
 */
export function productView(ctx) {
  const { dialog, body, title } = ctx;
  let token = 0;

  dialog.addEventListener("click", (event) => {
    if (event.target === dialog || event.target.closest("[data-close]")) dialog.close();
  });

  async function open(productId) {
    const mine = ++token;
    title.textContent = "Loading product…";
    body.replaceChildren(h("p", { class: "status loading", text: "Loading…" }));
    body.setAttribute("aria-busy", "true");
    if (!dialog.open) dialog.showModal();
    const user = ctx.currentUser();
    try {
      const [product, similar, targets] = await Promise.all([
        api(`/v1/products/${productId}`),
        api(`/v1/products/${productId}/similar`, { query: { k: 6 } }),
        user
          ? api(`/v1/users/${user.user_id}/share-targets`, {
              query: { product_id: productId, k: 5 },
            })
          : null,
      ]);
      if (mine !== token) return;
      title.textContent = product.title;
      body.replaceChildren(
        details(product),
        shareSection(product, targets, user),
        similarSection(similar),
      );
    } catch (err) {
      if (mine !== token) return;
      title.textContent = "Product";
      body.replaceChildren(h("p", { class: "error", role: "alert", text: err.message }));
    } finally {
      if (mine === token) body.setAttribute("aria-busy", "false");
    }
  }

  function details(p) {
    return h(
      "section",
      { class: "product-details", "aria-label": "Details" },
      productTile(p),
      h(
        "div",
        {},
        h("p", { class: "price price-large", text: price(p.price) }),
        h("p", {}, h("span", { class: "muted", text: "Shop " }), p.shop_name || `shop ${p.shop_id}`),
        p.brand ? h("p", {}, h("span", { class: "muted", text: "Brand " }), p.brand) : null,
        h("p", { class: "category", text: categoryParts(p.category_path).join(" › ") }),
        h("p", { class: "description", text: p.description }),
      ),
    );
  }

  function shareSection(product, targets, user) {
    const section = h(
      "section",
      { class: "share", "aria-labelledby": "share-title" },
      h("h3", { id: "share-title", text: "Share with friends" }),
    );
    if (!user) {
      section.append(h("p", { class: "muted", text: "Pick a person to share as them." }));
      return section;
    }
    if (!targets.data.length) {
      section.append(h("p", { class: "muted", text: `@${user.handle} follows nobody to tell.` }));
      return section;
    }
    section.append(
      h("p", { class: "muted", text: `The people @${user.handle} follows most likely to want it:` }),
      h("ul", { class: "share-list" }, targets.data.map((t) => shareTarget(product, t, user))),
    );
    return section;
  }

  function shareTarget(product, target, user) {
    const status = h("span", { class: "share-status", role: "status" });
    const button = h("button", {
      type: "button",
      class: "btn btn-primary btn-small mention-btn",
      "aria-label": `Mention @${target.handle} in a post about this product`,
      text: `@${target.handle}`,
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      status.textContent = "Posting…";
      try {
        const answer = await api("/v1/posts", {
          method: "POST",
          body: {
            user_id: user.user_id,
            text: `@${target.handle} you might like this: ${product.title}`,
            mentions: [target.user_id],
            product_id: product.product_id,
          },
        });
        button.textContent = `✓ @${target.handle}`;
        status.textContent = `Posted (post ${answer.post_id})`;
        ctx.onPosted(answer);
      } catch (err) {
        button.disabled = false;
        status.textContent = "";
        ctx.onError(err);
      }
    });
    return h(
      "li",
      { class: "share-target", dataset: { userId: target.user_id } },
      avatar(target.handle),
      h(
        "div",
        { class: "share-who" },
        h("span", { class: "handle", text: `@${target.handle}` }),
        reasonList(target.reasons || [], { max: 2 }),
      ),
      h("div", { class: "share-action" }, button, status),
    );
  }

  function similarSection(similar) {
    const section = h(
      "section",
      { class: "similar", "aria-labelledby": "similar-title" },
      h("h3", { id: "similar-title", text: "Similar products" }),
    );
    if (!similar.data.length) {
      section.append(h("p", { class: "muted", text: "Nothing similar found." }));
      return section;
    }
    const list = h("ul", { class: "mini-cards" });
    for (const item of similar.data) {
      const b = h(
        "button",
        { type: "button", class: "mini-card", dataset: { productId: item.product.product_id } },
        productTile(item.product),
        h("span", { class: "mini-title", text: item.product.title }),
        h("span", { class: "price", text: price(item.product.price) }),
      );
      b.addEventListener("click", () => open(item.product.product_id));
      list.append(h("li", {}, b));
    }
    section.append(list);
    return section;
  }

  return open;
}
