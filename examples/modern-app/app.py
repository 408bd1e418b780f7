"""A one-route app on current Flask (the demo imports it from this directory's .venv)."""

from importlib.metadata import version

from flask import Flask, render_template_string

app = Flask(__name__)


@app.route("/")
def index() -> str:
    return render_template_string("modern-app says hello from Flask {{ version }}", version=version("flask"))
