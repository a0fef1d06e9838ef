"""`echovideo bench`: what a memory mode, a weight format or a speed option costs and saves.

kits.py builds the pipelines measured (a released folder, or tiny / medium / full-size
random DiTs with small encoders); run.py times one generation stage by stage with its peak
memory; report.py compares a run with its baseline (same process) and writes the JSON.
"""
