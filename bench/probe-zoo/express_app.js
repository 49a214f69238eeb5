// Express 4 as the middlewares' READMEs configure them: express-basic-auth with its defaults
// (no `challenge`), express-jwt with HS256, errors left to Express's default handler.
const express = require("express");
const basicAuth = require("express-basic-auth");
const { expressjwt } = require("express-jwt");

const app = express();
const jwtAuth = expressjwt({ secret: process.env.ZOO_JWT_SECRET, algorithms: ["HS256"] });

app.get("/health", (req, res) => res.json({ ok: true }));
app.get("/basic/items", basicAuth({ users: { alice: "alice-password" } }), (req, res) => res.json([]));
app.get("/api/items", jwtAuth, (req, res) => res.json([]));
app.get("/api/admin", jwtAuth, (req, res) => {
  if (req.auth.role !== "admin") return res.status(403).json({ message: "Forbidden" });
  res.json({ users: [] });
});

app.listen(Number(process.env.ZOO_EXPRESS_PORT), "127.0.0.1");
