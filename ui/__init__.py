"""The Streamlit chat app; it talks to the REST API like any other client."""
