// The page's only way to make DOM: createElement and textContent. No HTML string is ever
// parsed, so no chain data (market names, addresses, logs) can become markup or script.

/** `el("td", {text, className, title, href, data: {raw: "1"}}, ...children)` */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.text !== undefined) node.textContent = String(props.text);
  if (props.className) node.className = props.className;
  if (props.title !== undefined) node.title = String(props.title);
  if (props.href !== undefined) node.setAttribute("href", String(props.href));
  for (const [key, value] of Object.entries(props.data || {})) node.dataset[key] = String(value);
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Replace what `id` shows by `text` (and its raw value, for tooltips and tests). */
export function show(id, text, raw) {
  const node = document.getElementById(id);
  node.textContent = String(text);
  if (raw !== undefined) {
    node.dataset.raw = String(raw);
    node.title = String(raw);
  }
}

/** Replace the rows of a table body. */
export function rows(tableId, list) {
  document.querySelector(`#${tableId} tbody`).replaceChildren(...list);
}

/** A link to an account's page. The address goes only into a fragment, URI-encoded. */
export function accountLink(address) {
  const text = String(address);
  return el("a", { href: `#account=${encodeURIComponent(text)}`, text: shorten(text), title: text, className: "address" });
}

export const shorten = (text) => (text.length > 20 ? `${text.slice(0, 10)}…${text.slice(-6)}` : text);

/** Prepend to a list, keeping at most `limit` entries (the DOM stays bounded). */
export function prepend(listId, item, limit) {
  const list = document.getElementById(listId);
  list.prepend(item);
  while (list.children.length > limit) list.lastElementChild.remove();
}
