from domains.emissions import assets
from mesh_assets.definitions import build_domain_definitions

defs = build_domain_definitions("emissions", assets)
