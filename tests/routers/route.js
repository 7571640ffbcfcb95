// Which handler real Node routers give each path: Express and Koa (@koa/router), both
// case-insensitive by default, with one handler mounted at each rule's path (exact paths
// first, then prefixes, longest first: the filter's most-specific-wins). Reads
// {"mounts": [{"path", "exact"}], "paths": [...]} on stdin; writes, per router, what each path
// was served as: the mount's path as configured followed by the rest of the request's path
// (`/ADMIN/users` served by the `/admin` mount is `/admin/users`), the path itself when no
// mount served it, or null when the router or Node's client refused it.
"use strict";
const http = require("http");
const express = require("express");
const Koa = require("koa");
const Router = require("@koa/router");

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const mounts = [...input.mounts].sort(
  (a, b) => Number(b.exact) - Number(a.exact) || b.path.length - a.path.length,
);

function expressApp() {
  const app = express();
  for (const m of mounts) {
    const serve = (req, res) => res.json({ mount: m.path, rest: m.exact ? "" : req.path });
    if (m.exact) app.all(m.path, serve);
    else app.use(m.path, serve);
  }
  app.use((req, res) => res.json({ mount: null }));
  app.use((err, req, res, next) => res.status(400).json({ error: String(err) }));
  return app;
}

function koaApp() {
  const app = new Koa();
  const router = new Router();
  for (const m of mounts) {
    const serve = (ctx) => {
      ctx.body = { mount: m.path, rest: m.exact ? "" : ctx.path.slice(m.path.length) };
    };
    if (m.exact) router.all(m.path, serve);
    else router.all([m.path, `${m.path}/{*rest}`], serve);
  }
  app.use(router.routes());
  app.use((ctx) => {
    if (ctx.body === undefined) ctx.body = { mount: null };
  });
  return app.callback();
}

function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler).listen(0, "127.0.0.1", () => resolve(server));
  });
}

function get(port, agent, path) {
  return new Promise((resolve) => {
    let req;
    try {
      req = http.request({ host: "127.0.0.1", port, path, agent }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          if (res.statusCode !== 200) return resolve(null);
          const answer = JSON.parse(body);
          resolve(answer.mount === null ? path : answer.mount + answer.rest);
        });
      });
    } catch (e) {
      return resolve(null);
    }
    req.on("error", () => resolve(null));
    req.end();
  });
}

async function readings(handler) {
  const server = await listen(handler);
  const port = server.address().port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const out = new Array(input.paths.length);
  let next = 0;
  const worker = async () => {
    while (next < input.paths.length) {
      const i = next++;
      out[i] = await get(port, agent, input.paths[i]);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
  server.close();
  return out;
}

(async () => {
  const out = {
    "express-case-insensitive": await readings(expressApp()),
    "koa-router-case-insensitive": await readings(koaApp()),
  };
  process.stdout.write(JSON.stringify(out));
})();
