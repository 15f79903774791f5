// The pages' one stylesheet, inlined in every page (no build step, no extra request).
export const styles = `
:root{--fg:#1d2130;--muted:#5d6475;--bg:#f5f6fa;--card:#fff;--line:#e2e5ee;--accent:#4f46e5;--accent-dark:#4338ca;
--ok-bg:#ecfdf5;--ok:#065f46;--ok-line:#a7f3d0;--err-bg:#fef2f2;--err:#991b1b;--err-line:#fecaca;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;line-height:1.55;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;flex-direction:column}
.wrap{width:100%;max-width:46rem;margin:0 auto;padding:0 1.25rem}
header.top{background:#fff;border-bottom:1px solid var(--line)}
header.top .wrap{display:flex;align-items:center;justify-content:space-between;min-height:3.75rem;gap:1rem}
.brand{display:flex;align-items:center;gap:.55rem;font-weight:700;color:var(--fg);text-decoration:none;letter-spacing:-.01em}
.logo{width:1.6rem;height:1.6rem;border-radius:7px;background:linear-gradient(135deg,#6366f1,#0ea5e9);display:inline-block}
.who-small{color:var(--muted);font-size:.92rem}
main.wrap{flex:1;padding-top:2.5rem;padding-bottom:3rem}
h1{font-size:1.9rem;line-height:1.2;margin:0 0 .5rem;letter-spacing:-.02em}
h2{font-size:1.05rem;margin:0 0 .9rem;letter-spacing:-.01em}
p{margin:0 0 1rem}
.lead{color:var(--muted);margin:0 0 2rem;font-size:1.07rem;max-width:38rem}
.muted{color:var(--muted)}
.small{font-size:.88rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:1.5rem;margin:0 0 1.25rem;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.card > :last-child{margin-bottom:0}
.btn{display:inline-flex;align-items:center;justify-content:center;gap:.6rem;font:inherit;font-weight:600;font-size:.97rem;padding:.62rem 1.1rem;border-radius:9px;border:1px solid transparent;cursor:pointer;text-decoration:none;background:var(--accent);color:#fff;line-height:1.3}
.btn:hover{background:var(--accent-dark)}
.btn:disabled{opacity:.45;cursor:not-allowed}
.btn:focus-visible{outline:3px solid #a5b4fc;outline-offset:2px}
.btn.secondary{background:#fff;color:var(--fg);border-color:var(--line)}
.btn.secondary:hover{background:#f3f4f8}
.btn.danger{background:#fff;color:var(--err);border-color:var(--err-line)}
.btn.danger:hover{background:var(--err-bg)}
.providers{display:grid;gap:.7rem;max-width:24rem}
.providers .btn{width:100%;padding:.75rem 1rem}
.mark{width:1.45rem;height:1.45rem;border-radius:50%;display:inline-grid;place-items:center;font-size:.8rem;font-weight:800;background:rgba(255,255,255,.22)}
.btn.google{background:#fff;color:#1f1f1f;border-color:#dadce0}.btn.google:hover{background:#f8f9fa}
.btn.google .mark{background:#4285f4;color:#fff}
.btn.microsoft{background:#2f2f2f}.btn.microsoft:hover{background:#1b1b1b}
.btn.github{background:#24292f}.btn.github:hover{background:#111418}
.actions{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;margin:0 0 2rem}
form{margin:0}
.who{display:flex;gap:1rem;align-items:center;margin-bottom:1.75rem}
.who h1{margin:0}
.avatar{width:3.75rem;height:3.75rem;border-radius:50%;background:#e0e7ff;color:var(--accent);display:grid;place-items:center;font-weight:700;font-size:1.35rem;object-fit:cover;flex:none}
.badge{display:inline-block;font-size:.78rem;font-weight:600;padding:.1rem .55rem;border-radius:999px;background:#eef2ff;color:var(--accent-dark);vertical-align:middle}
.badge.warn{background:#fff7ed;color:#9a3412}
dl.claims{display:grid;grid-template-columns:minmax(8rem,max-content) 1fr;gap:.45rem 1.5rem;margin:0}
dl.claims dt{color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.86rem;padding-top:.1rem}
dl.claims dd{margin:0;overflow-wrap:anywhere}
code.nowrap{white-space:nowrap;overflow-wrap:normal}
@media (max-width:30rem){dl.claims{grid-template-columns:1fr;gap:.15rem}dl.claims dd{margin-bottom:.6rem}}
.stat{font-size:1.5rem;font-weight:700;letter-spacing:-.01em;font-variant-numeric:tabular-nums}
.notice{padding:.8rem 1rem;border-radius:10px;background:var(--ok-bg);color:var(--ok);border:1px solid var(--ok-line);margin:0 0 1.5rem}
.notice.error{background:var(--err-bg);color:var(--err);border-color:var(--err-line)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{background:#0f172a;color:#e2e8f0;padding:1rem 1.1rem;border-radius:10px;overflow:auto;margin:0;line-height:1.45}
table.accounts{border-collapse:collapse;width:100%;font-size:.95rem}
table.accounts th,table.accounts td{text-align:left;padding:.45rem .75rem .45rem 0;border-bottom:1px solid var(--line)}
table.accounts th{color:var(--muted);font-weight:600;font-size:.85rem}
footer{color:var(--muted);font-size:.85rem;padding-bottom:2rem}
footer a{color:inherit}
`;
