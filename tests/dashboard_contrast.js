// Text contrast of every visible text node against its effective background (WCAG 2 relative
// luminance): large text (>= 24px, or >= 18.66px bold) needs 3:1, other text 4.5:1.
// Evaluated in the page by tests/test_dashboard_browser.py; returns the failures.
() => {
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(',').map((x) => parseFloat(x)); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lum = ({ r, g, b }) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const blend = (top, bottom) => ({ r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1 });
  const background = (el) => { const layers = []; for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) layers.push(c); if (c && c.a >= 1) break; }
    let bg = { r: 255, g: 255, b: 255, a: 1 }; for (const layer of layers.reverse()) bg = blend(layer, bg); return bg; };
  const problems = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement; if (!el || !node.textContent.trim()) continue;
    if (el.closest('.visually-hidden, canvas, noscript, .uplot .u-legend')) continue;
    const rect = el.getBoundingClientRect(); const style = getComputedStyle(el);
    if (!rect.width || !rect.height || style.visibility === 'hidden' || el.closest('[hidden]')) continue;
    const fg = blend(parse(style.color), background(el)); const bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a); const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize); const bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) problems.push(`${ratio.toFixed(2)} < ${needed}: "${node.textContent.trim().slice(0, 40)}" (${el.tagName.toLowerCase()}.${el.className})`);
  }
  return problems;
}
