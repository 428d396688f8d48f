// Small DOM helpers shared by the playground's modules.

/** The element with id `id`, or an error naming it (index.html lacks it). */
export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`playground: index.html has no element #${id}`);
  return e as T;
};

/** A new element with properties and children. */
export const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};

/** Lets the page repaint and handle input (a macrotask). */
export const yieldToPage = () => new Promise<void>((r) => setTimeout(r, 0));

export const fmtCount = (n: number) => n.toLocaleString('en-US');

/** White → the accent blue, by v / max (0 = white). */
export function heatColor(v: number, max: number): string {
  const a = max > 0 ? Math.max(0, Math.min(1, v / max)) : 0;
  const r = Math.round(255 - a * (255 - 11));
  const g = Math.round(255 - a * (255 - 98));
  const b = Math.round(255 - a * (255 - 214));
  return `rgb(${r},${g},${b})`;
}
