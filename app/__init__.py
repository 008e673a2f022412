"""The Streamlit front end: app/main.py routes to thin pages; app/services.py holds the logic."""
