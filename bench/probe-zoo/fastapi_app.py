"""FastAPI as its security tutorial writes it: HTTPBearer with an HS256 JWT verified by
PyJWT (algorithms pinned), HTTPBasic() without a realm, a role check answering 403."""
import os
import secrets

import jwt
import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

SECRET = os.environ["ZOO_JWT_SECRET"]
app = FastAPI()
bearer = HTTPBearer()
basic = HTTPBasic()


def claims(creds: HTTPAuthorizationCredentials = Depends(bearer)) -> dict:
    try:
        return jwt.decode(creds.credentials, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise HTTPException(status_code=401, detail="Invalid token", headers={"WWW-Authenticate": "Bearer"})


@app.get("/api/items")
def items(c: dict = Depends(claims)):
    return []


@app.get("/api/admin")
def admin(c: dict = Depends(claims)):
    if c.get("role") != "admin":
        raise HTTPException(status_code=403, detail="Not enough permissions")
    return {"users": []}


@app.get("/basic/me")
def me(creds: HTTPBasicCredentials = Depends(basic)):
    ok = secrets.compare_digest(creds.username, "alice") and secrets.compare_digest(creds.password, "alice-password")
    if not ok:
        raise HTTPException(status_code=401, detail="Incorrect username or password", headers={"WWW-Authenticate": "Basic"})
    return {"user": creds.username}


@app.get("/health")
def health():
    return {"ok": True}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["ZOO_FASTAPI_PORT"]), log_level="warning")
