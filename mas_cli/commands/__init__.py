"""Thin entry files, one per command: compose -> validate -> run -> summarise."""
