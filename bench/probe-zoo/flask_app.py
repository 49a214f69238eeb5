"""Flask 3 as tutorials write it: Basic auth by hand on /api/*, a session login whose
protected page redirects to the login form (what Flask-Login's login_required does)."""
import os

from flask import Flask, abort, jsonify, redirect, request, session, url_for

app = Flask(__name__)
app.secret_key = "zoo-secret-key"
USERS = {"alice": ("alice-password", "user"), "root": ("root-password", "admin")}


def basic_user():
    a = request.authorization
    if a is None or a.type != "basic" or USERS.get(a.username, (None,))[0] != a.password:
        return None
    return a.username


def challenge():
    return jsonify(error="unauthorized"), 401, {"WWW-Authenticate": 'Basic realm="flask"'}


@app.get("/api/items")
def items():
    if basic_user() is None:
        return challenge()
    return jsonify([])


@app.get("/api/admin")
def admin():
    user = basic_user()
    if user is None:
        return challenge()
    if USERS[user][1] != "admin":
        abort(403)
    return jsonify(users=list(USERS))


@app.post("/login")
def login():
    user = request.form.get("user", "")
    if USERS.get(user, (None,))[0] == request.form.get("password"):
        session["user"] = user
        return redirect(url_for("account"))
    return jsonify(error="bad credentials"), 401


@app.get("/account")
def account():
    if "user" not in session:
        return redirect(url_for("login", next=request.path))
    return jsonify(user=session["user"])


@app.get("/health")
def health():
    return jsonify(ok=True)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["ZOO_FLASK_PORT"]))
