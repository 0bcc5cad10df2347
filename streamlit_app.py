"""Placeholder entry point; the dashboard comes with issue 3."""
import streamlit as st

st.title("Why did the classifier decide that?")
