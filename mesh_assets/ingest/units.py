"""One shared pint registry for climate-finance units, and helpers to parse messy unit strings.

Everything the domains need to turn a reported ``(value, unit)`` pair into a value in a canonical unit
lives here, so every data product uses the same definitions and the same conversion factors.

Conventions (also described in ``docs/cleaning-rules.md``):

* **Greenhouse gases.** ``CO2e`` is a base dimension ``[carbon_dioxide_equivalent]``. ``CO2`` is an alias of
  ``CO2e`` (factor 1): reported ``t CO2`` figures are counted as ``t CO2e``, as the OS-Climate ITR tool does.
  ``CH4`` and ``N2O`` are their own dimensions; a *mass* of CH4/N2O converts to CO2e only through the
  100-year global warming potentials of IPCC AR5 (WG1 Table 8.7, without climate-carbon feedbacks):
  ``CH4 = 28``, ``N2O = 265`` (:data:`GWP100_AR5`). A *volume* of CH4 (``bcm CH4``, ``MMscf CH4``) is a
  natural-gas production quantity and is never turned into CO2e.
* **Tonnes.** ``t`` is the metric tonne. ``ton``/``tons`` are read as metric tonnes too (pint would read a
  US short ton): the sample data uses ``tons`` in non-US reports (``tons CO2e/(million SEK)``).
* **Scale words.** ``thousand``/``Thousands``, ``million``/``Millions``, ``billion``/``Billions``,
  ``trillion``, and the prefix ``myria-`` (10 000: ``myriametric_ton``, ``myriat``).
* **Commodities** are dimensions so that a tonne of steel never converts into a tonne of cement:
  ``Steel`` (alias ``Fe``; ``Fe_ton = t Steel``), ``Cement``, ``Clinker``, ``Aluminum`` (``Al``,
  ``aluminium``), ``Copper``, ``Coal``, ``Paper``, ``Petrochemicals``, ``Asphalt``. Passenger and freight
  activity: ``pkm = passenger * km``, ``tkm = t * km``, ``vkm = vehicle * km``.
* **Oil and gas.** ``boe = 6.1178632 GJ`` (value used by ITR). Oil-industry multipliers are *not* SI
  prefixes: ``mboe``/``Mboe``/``kboe`` = 1e3 boe, ``mmboe``/``MMboe`` = 1e6 boe; barrels (``bbl``,
  ``kbbl``, ``Mbbl``, ``MMbbl``) are counted as barrels of oil equivalent (1 bbl = 1 boe).
  ``scf`` = ft³; ``Mscf`` = 1e3 scf, ``MMscf`` = 1e6 scf, ``bscf``/``Bscf``/``MMMscf`` = 1e9 scf;
  ``bcm`` = 1e9 m³. A bare gas volume (``bscf``) is tagged as ``CH4`` (natural gas).
  :data:`NATURAL_GAS_ENERGY_PER_M3` (38.64 MJ/m³ = 0.7046 kg/m³ × 54.84 MJ/kg, ITR's values) converts a
  gas volume to energy when a caller needs it (:func:`gas_volume_to_energy_factor`).
* **Rates.** ``kbbl/d``, ``kboe/d``: a per-time production rate is annualised with 1 year = 365.25 days.
* **Currencies** are one dimension each (``[currency_EUR]``, ``[currency_USD]`` …) so amounts in different
  currencies never mix without an explicit FX rate; ``M€`` = million EUR, ``megaEUR`` = 1e6 EUR.

Canonical units (:func:`canonical_unit`): emissions ``t CO2e``; electricity (any ``Wh`` unit) ``MWh``;
other energy (J, boe, bbl, Btu, therm) ``boe``; gas volume ``bcm CH4``; commodity masses ``t <Commodity>``;
bare mass ``t``; ``pkm``, ``tkm``, ``vkm``; area ``m**2``; volume ``m**3``; money the ISO currency code
(``EUR``); intensities ``t CO2e/<canonical production unit>`` e.g. ``t CO2e/(t Cement)``.

Unknown units raise :class:`UnknownUnitError` (a ``ValueError``) whose message names the unit, so a caller
can count the row under that reason.

pint (about half a second to import) is imported by the functions that build or use the registry,
so a module that only imports this one, such as a code location at load, does not pay for it.
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pint

# IPCC AR5 WG1 Table 8.7, 100-year GWP without climate-carbon feedbacks (also openscm-units "AR5GWP100").
GWP100_AR5: dict[str, float] = {"CH4": 28.0, "N2O": 265.0}
GWP_SOURCE = "IPCC AR5 GWP100 (no climate-carbon feedback): CH4=28, N2O=265"

BOE_GJ = 6.1178632  # one barrel of oil equivalent in GJ (ITR osc_units)
# Natural gas energy content: density 0.7046 kg/m3 x specific energy 54.84 MJ/kg (ITR osc_units).
NATURAL_GAS_ENERGY_PER_M3 = "38.640264 MJ/m**3"

CURRENCIES: tuple[str, ...] = (
    "EUR", "USD", "JPY", "GBP", "CHF", "SEK", "NOK", "DKK", "KRW", "CNY", "TWD", "THB", "MYR", "MAD",
    "CAD", "AUD", "NZD", "BRL", "MXN", "INR", "HKD", "SGD", "ZAR", "PLN", "SAR", "AED", "RUB", "TRY",
    "IDR", "ILS", "CZK", "HUF", "CLP", "COP", "PHP", "QAR", "KWD", "EGP", "NGN", "ARS", "PEN", "VND",
)  # fmt: skip

# Commodity dimension name -> unit name used in canonical strings.
COMMODITIES: dict[str, str] = {
    "steel": "Steel",
    "cement": "Cement",
    "clinker": "Clinker",
    "aluminum": "Aluminum",
    "copper": "Copper",
    "coal": "Coal",
    "paper": "Paper",
    "petrochemicals": "Petrochemicals",
    "asphalt": "Asphalt",
}

_DEFINITIONS = [
    # greenhouse gases
    "CO2e = [carbon_dioxide_equivalent] = CO2eq = CO2_eq",
    "CO2 = CO2e",
    "tCO2e = metric_ton * CO2e",
    "CH4 = [methane] = natural_gas",
    "N2O = [nitrous_oxide]",
    # scale words and the myria prefix
    "myria- = 1e4",
    "hundred = 1e2 = Hundred = Hundreds = hundreds",
    "thousand = 1e3 = Thousand = Thousands = thousands",
    "million = 1e6 = Million = Millions = millions",
    "billion = 1e9 = Billion = Billions = billions",
    "trillion = 1e12 = Trillion = Trillions = trillions",
    # commodities
    "Steel = [steel] = Fe",
    "Fe_ton = metric_ton * Steel",
    "Cement = [cement]",
    "Clinker = [clinker]",
    "Aluminum = [aluminum] = Al = aluminium = Aluminium",
    "Copper = [copper] = Cu",
    "Coal = [coal]",
    "Paper = [paper] = Pulp",
    "Petrochemicals = [petrochemicals]",
    "Asphalt = [asphalt]",
    # transport activity
    "passenger = [passenger]",
    "vehicle = [vehicle]",
    "pkm = passenger * kilometer",
    "vkm = vehicle * kilometer",
    "tkm = metric_ton * kilometer",
    # oil and gas (industry multipliers are spelled out: see _TOKEN_MAP)
    f"boe = {BOE_GJ} * gigajoule = BOE = BoE",
    "thousand_boe = 1e3 * boe",
    "million_boe = 1e6 * boe",
    "scf = foot ** 3",
    "thousand_scf = 1e3 * scf",
    "million_scf = 1e6 * scf",
    "billion_scf = 1e9 * scf",
    "bcm = 1e9 * meter ** 3",
]

# Whole-token rewrites applied before pint parses a string. Keys are matched case-sensitively on tokens.
_TOKEN_MAP: dict[str, str] = {
    "per": "/",
    "ton": "metric_ton",
    "tons": "metric_ton",
    "tonne": "metric_ton",
    "tonnes": "metric_ton",
    "myriat": "myriametric_ton",
    "kt": "kilometric_ton",  # pint would read a knot
    "bbl": "boe",
    "kbbl": "thousand_boe",
    "Mbbl": "thousand_boe",
    "mbbl": "thousand_boe",
    "MMbbl": "million_boe",
    "mmbbl": "million_boe",
    "kboe": "thousand_boe",
    "mboe": "thousand_boe",
    "Mboe": "thousand_boe",
    "mmboe": "million_boe",
    "MMboe": "million_boe",
    "Mscf": "thousand_scf",
    "mscf": "thousand_scf",
    "MMscf": "million_scf",
    "mmscf": "million_scf",
    "bscf": "billion_scf",
    "Bscf": "billion_scf",
    "MMMscf": "billion_scf",
    "M€": "million EUR",
    "k€": "thousand EUR",
    "€": "EUR",
    "$": "USD",
    "US$": "USD",
    "tCO2": "metric_ton CO2",
    "tCO2eq": "metric_ton CO2e",
}

# Whole-string aliases for unit descriptions that are not unit expressions at all (benchmark files).
UNIT_ALIASES: dict[str, str] = {
    # TPI 2-degree autos files carry a truncated description instead of a unit
    "verage new vehicle emissions (grams of CO2 per kilometre [NEDC]": "g CO2/vkm",
    "Average new vehicle emissions (grams of CO2 per kilometre [NEDC])": "g CO2/vkm",
}

_GAS_VOLUME_TOKENS = ("scf", "bcm")
_TOKEN_RE = re.compile(r"[A-Za-z_€$][A-Za-z0-9_€$]*|[€$]")


class UnknownUnitError(ValueError):
    """A unit string that cannot be parsed or has no canonical form. The message names the unit."""

    def __init__(self, unit: object, detail: str = ""):
        self.unit = unit
        super().__init__(f"unknown unit {unit!r}" + (f": {detail}" if detail else ""))


@functools.cache
def get_registry() -> pint.UnitRegistry:
    """The shared registry (built once per process)."""
    import pint

    ureg = pint.UnitRegistry(on_redefinition="raise", cache_folder=None)
    for definition in _DEFINITIONS:
        ureg.define(definition)
    for code in CURRENCIES:
        ureg.define(f"{code} = [currency_{code}]")
    return ureg


def clean_unit_string(text: object) -> str:
    """Normalise spelling variants of a unit string into something pint parses.

    ``kg CO2e per (t Cement)`` -> ``kg CO2e / (t Cement)``; ``t CO2e / (t Steel)`` is left as is;
    oil/gas multipliers and ``tons`` are rewritten (see module docstring). Raises
    :class:`UnknownUnitError` for empty/non-string input.
    """
    if not isinstance(text, str) or not text.strip():
        raise UnknownUnitError(text, "empty or not a string")
    raw = " ".join(text.strip().split())
    raw = UNIT_ALIASES.get(raw, raw)

    def _sub(match: re.Match[str]) -> str:
        token = match.group(0)
        return _TOKEN_MAP.get(token, token)

    out = _TOKEN_RE.sub(_sub, raw)
    # a bare gas volume (no CH4 tag) is natural gas
    tokens = set(_TOKEN_RE.findall(raw))
    if any(t.lower().endswith(_GAS_VOLUME_TOKENS) for t in tokens) and not tokens & {"CH4", "natural_gas"}:
        out = f"({out}) * CH4"
    return out


@functools.lru_cache(maxsize=4096)
def parse_unit(text: str) -> pint.Quantity:
    """The quantity ``1 <text>`` (scale words such as ``Millions`` end up in the magnitude).

    Raises :class:`UnknownUnitError` naming ``text`` when pint cannot parse it.
    """
    import pint

    ureg = get_registry()
    cleaned = clean_unit_string(text)
    try:
        q = ureg.parse_expression(cleaned)
    except (
        Exception
    ) as exc:  # pint raises several error types (UndefinedUnitError, DefinitionSyntaxError, ...)
        raise UnknownUnitError(text, str(exc)) from None
    if not isinstance(q, pint.Quantity):  # a plain number such as "1000"
        raise UnknownUnitError(text, "not a unit")
    return q


def _dims(q: pint.Quantity) -> dict[str, float]:
    return {str(k): float(str(v)) for k, v in q.dimensionality.items()}


def _unit_names(q: pint.Quantity) -> set[str]:
    return set(q._units.keys())  # pint's UnitsContainer of the quantity


def _is_electric(q: pint.Quantity) -> bool:
    return any(name.endswith("watt_hour") for name in _unit_names(q))


def _production_canonical(q: pint.Quantity) -> tuple[str, str]:
    """(kind, canonical unit) of a production-like quantity (activity, energy, mass, money ...)."""
    try:
        return _production_canonical_exact(q)
    except UnknownUnitError:
        if _dims(q).get("[time]", 0.0) >= 0:
            raise
    # a per-time rate (kbbl/d) has the canonical unit of the annual amount
    return _production_canonical_exact(q * get_registry().Quantity(1, "year"))


def _production_canonical_exact(q: pint.Quantity) -> tuple[str, str]:
    d = _dims(q)
    energy = {"[length]": 2, "[mass]": 1, "[time]": -2}
    if d == energy:
        return ("electricity", "MWh") if _is_electric(q) else ("energy", "boe")
    if d == {"[length]": 3, "[methane]": 1}:
        return "gas_volume", "bcm CH4"
    if d == {"[length]": 3}:
        return "volume", "m**3"
    if d == {"[length]": 2}:
        return "area", "m**2"
    if d == {"[mass]": 1}:
        return "mass", "t"
    if d == {"[passenger]": 1, "[length]": 1}:
        return "passenger_distance", "pkm"
    if d == {"[vehicle]": 1, "[length]": 1}:
        return "vehicle_distance", "vkm"
    if d == {"[mass]": 1, "[length]": 1}:
        return "freight_distance", "tkm"
    for dim, name in COMMODITIES.items():
        if d == {"[mass]": 1, f"[{dim}]": 1}:
            return f"mass_{dim}", f"t {name}"
    if len(d) == 1:
        (only_dim, exponent) = next(iter(d.items()))
        if exponent == 1 and only_dim.startswith("[currency_"):
            code = only_dim[len("[currency_") : -1]
            return "currency", code
    raise UnknownUnitError(
        str(q.units), f"no canonical production unit for dimensionality {q.dimensionality}"
    )


@functools.lru_cache(maxsize=4096)
def unit_info(text: str) -> tuple[str, str]:
    """``(kind, canonical_unit)`` for a unit string.

    kind is ``emissions`` (-> ``t CO2e``), ``intensity`` (-> ``t CO2e/<production unit>``) or a production
    kind (``electricity``, ``energy``, ``gas_volume``, ``mass_steel``, ``mass_cement``, ``mass``,
    ``passenger_distance``, ``currency``, ``area`` ...). Raises :class:`UnknownUnitError`.
    """
    q = parse_unit(text)
    d = _dims(q)
    co2e = d.get("[carbon_dioxide_equivalent]", 0)
    gas = {g: d.get(f"[{n}]", 0) for g, n in (("CH4", "methane"), ("N2O", "nitrous_oxide"))}
    if co2e == 0 and d.get("[mass]", 0) == 1 and any(v == 1 for v in gas.values()) and len(d) == 2:
        return "emissions", "t CO2e"  # mass of CH4 / N2O, converted with GWP100
    if co2e == 1:
        rest = {k: v for k, v in d.items() if k != "[carbon_dioxide_equivalent]"}
        if rest == {"[mass]": 1}:
            return "emissions", "t CO2e"
        ureg = get_registry()
        denominator = ureg.Quantity(1, "metric_ton * CO2e") / q
        _, prod_unit = _production_canonical(denominator)
        if " " in prod_unit:
            prod_unit = f"({prod_unit})"
        return "intensity", f"t CO2e/{prod_unit}"
    if co2e == 0:
        return _production_canonical(q)
    raise UnknownUnitError(text, f"unsupported dimensionality {q.dimensionality}")


def canonical_unit(text: str) -> str:
    """The canonical unit string for ``text`` (see module docstring)."""
    return unit_info(text)[1]


def unit_kind(text: str) -> str:
    """The kind of quantity ``text`` measures (see :func:`unit_info`)."""
    return unit_info(text)[0]


@functools.lru_cache(maxsize=8192)
def conversion_factor(from_unit: str, to_unit: str | None = None) -> float:
    """Multiply a value in ``from_unit`` by this to get it in ``to_unit`` (default: canonical unit).

    Handles GWP100 for CH4/N2O masses -> CO2e and annualises per-time rates (``kbbl/d``).
    Raises :class:`UnknownUnitError` for unknown units and for incompatible pairs.
    """
    import pint

    ureg = get_registry()
    target_text = to_unit if to_unit is not None else canonical_unit(from_unit)
    src = parse_unit(from_unit)
    dst = parse_unit(target_text)
    src = _gwp_to_co2e(src, dst)
    try:
        return float(src.to(dst.units).magnitude / dst.magnitude)
    except pint.DimensionalityError:
        pass
    if src.dimensionality.get("[time]", 0) == dst.dimensionality.get("[time]", 0) - 1:
        try:
            annual = src * ureg.Quantity(1, "year")
            return float(annual.to(dst.units).magnitude / dst.magnitude)
        except pint.DimensionalityError:
            pass
    raise UnknownUnitError(from_unit, f"cannot convert to {target_text!r}")


def _gwp_to_co2e(src: pint.Quantity, dst: pint.Quantity) -> pint.Quantity:
    ureg = get_registry()
    if dst.dimensionality.get("[carbon_dioxide_equivalent]", 0) != 1:
        return src
    for gas, dim in (("CH4", "[methane]"), ("N2O", "[nitrous_oxide]")):
        if src.dimensionality.get(dim, 0) == 1 and src.dimensionality.get("[mass]", 0) == 1:
            return src / ureg.Quantity(1, gas) * GWP100_AR5[gas] * ureg.Quantity(1, "CO2e")
    return src


def convert(value: float, from_unit: str, to_unit: str | None = None) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (default: the canonical unit)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    return float(value) * conversion_factor(from_unit, to_unit)


def to_t_co2e(value: float, unit: str) -> float:
    """An emissions amount in tonnes CO2e (``Mt CO2e``, ``Millions t CO2e``, ``kt CO2e``, ``t CH4`` ...)."""
    return convert(value, unit, "t CO2e")


def parse_quantity(text: str) -> tuple[float, str]:
    """Split a quantity string such as ``'1869.6 Fe * megametric_ton'`` into (value in canonical unit, unit)."""
    if not isinstance(text, str):
        raise UnknownUnitError(text, "not a string")
    match = re.match(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*?\s*(.+)$", text)
    if not match:
        raise UnknownUnitError(text, "not a '<number> <unit>' quantity")
    number, unit = float(match.group(1)), match.group(2).strip()
    canonical = canonical_unit(unit)
    return number * conversion_factor(unit, canonical), canonical


@functools.lru_cache(maxsize=256)
def gas_volume_to_energy_factor(to_unit: str = "boe") -> float:
    """Energy per ``bcm CH4`` of natural gas expressed in ``to_unit`` (ITR's density x specific energy)."""
    ureg = get_registry()
    per_m3 = ureg.Quantity(NATURAL_GAS_ENERGY_PER_M3)
    energy = (per_m3 * ureg.Quantity(1e9, "meter**3")).to(parse_unit(to_unit).units)
    return float(energy.m_as(energy.units))
