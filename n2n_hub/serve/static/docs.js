// Renders /openapi.json without a CDN: each route with its summary and request fields.
"use strict";
function el(tag, text, cls) { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; }
function schemaOf(op) {
  const content = (op.requestBody && op.requestBody.content) || {};
  const first = Object.entries(content)[0];
  return first ? { type: first[0], schema: first[1].schema || {} } : null;
}
fetch("/openapi.json").then((r) => r.json()).then((spec) => {
  const main = document.getElementById("api");
  main.replaceChildren(el("p", `${spec.info.title} ${spec.info.version}: ${spec.info.summary || ""}`));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const sec = el("section", null, "route");
      sec.append(el("h2", `${method.toUpperCase()} ${path}`), el("p", op.summary || "", "muted"));
      const body = schemaOf(op);
      if (body) {
        sec.append(el("p", `body: ${body.type}`));
        const dl = el("dl");
        for (const [name, prop] of Object.entries(body.schema.properties || {})) {
          dl.append(el("dt", `${name} (${prop.type || "object"}${prop.enum ? ": " + prop.enum.join(" | ") : ""})`),
                    el("dd", prop.description || ""));
        }
        sec.append(dl);
        if (body.schema.example) sec.append(el("pre", JSON.stringify(body.schema.example, null, 2)));
      }
      main.append(sec);
    }
  }
}).catch((err) => { document.getElementById("api").textContent = `cannot load /openapi.json: ${err}`; });
