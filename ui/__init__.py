"""The Streamlit chat UI (`spanqa ui`): app.py is the page, render.py the escaping HTML helpers."""
