"""Stand-in for ComfyUI's folder_paths (the part the adapter uses)."""
models_dir = ""
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}


def get_folder_paths(folder_name: str) -> list[str]:
    return list(folder_names_and_paths[folder_name][0])
