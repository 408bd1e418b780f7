"""A one-route Flask 1 app (the demo imports it from this directory's .venv)."""

import flask
from flask import Flask, render_template_string

app = Flask(__name__)


@app.route("/")
def index() -> str:
    return render_template_string("legacy-app says hello from Flask {{ version }}", version=flask.__version__)
