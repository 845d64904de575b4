"""Synthetic dossiers (hồ sơ mẫu) for the demo, the tests and the benchmarks.

Every dossier is built from one ``random.Random`` so a seed always gives the same dossier. A valid
dossier satisfies every rule of the data-quality suites (``lienthong.quality``); a *defect* breaks
exactly one of them while the payload stays schema-valid, so a test can tell which rule fired.
The people are fictitious: names are drawn from common Vietnamese family, middle and given names,
citizen ID numbers are structurally valid (province, century/sex, birth year) but random.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from lienthong.catalog import Procedure, get_catalog
from lienthong.clock import localize
from lienthong.codes import make_citizen_id
from lienthong.payloads import Submission

# The demo's first simulated moment (flows/demo.py plans from it, infra/demo.py starts the clock at
# it): the Thursday before the 2026 Hùng Kings compensatory day (27/4) and 30/4-1/5, so deadlines
# cross holidays.
DEMO_START = datetime.fromisoformat("2026-04-23T07:25:00+07:00")

# --- what a defect breaks -----------------------------------------------------------------------

DEFECTS: dict[str, str] = {
    # Values are the id of the rule of ``config/expectations`` each defect breaks (fnmatch pattern).
    # Identity (applicant): citizen ID structure and consistency with the declared person.
    "citizen_id_placeholder": "header.citizen_id.placeholder.applicant",
    "citizen_id_wrong_length": "header.citizen_id.structure.applicant",
    "citizen_id_unknown_province": "header.citizen_id.structure.applicant",
    "citizen_id_sex_mismatch": "header.citizen_id.sex.applicant",
    "citizen_id_birth_year_mismatch": "header.citizen_id.birth_year.applicant",
    "applicant_name_with_digits": "header.name.applicant.full_name",
    "applicant_name_too_long": "header.name.applicant.full_name",
    "missing_component": "*.component.*",
    # Birth declaration (group 1).
    "child_sex_mismatch": "birth.child_sex_equals_certificate",
    "child_birth_date_mismatch": "birth.child_date_of_birth_equals_certificate",
    "mother_name_mismatch": "birth.mother_name_equals_certificate",
    "birth_after_registration": "birth.date_of_birth_not_after_registration",
    "child_surname_not_from_parents": "birth.child_surname_from_father_or_mother",
    "missing_child_place_of_birth": "birth.required.child.place_of_birth",
    "missing_mother_citizen_id": "birth.required.mother.citizen_id",
    "late_registration": "birth.late_registration",  # a flag: > 60 days after birth
    # Residence declaration (group 1, permanent residence of the child).
    "residence_without_consent": "residence.household_head_consent",
    # Death declaration (group 2).
    "death_after_registration": "death.date_of_death_not_after_registration",
    "missing_death_notice_issuer": "death.required.death_notice.issuer",
    "late_death_registration": "death.late_registration",  # a flag: > 15 days after death
    # Funeral allowance (group 2 with 3 or 4 procedures).
    "funeral_allowance_late": "funeral.filed_within_90_days_of_death",
    "funeral_without_relationship": "funeral.applicant_relationship_required",
    # Land-use-right transfer.
    "contract_after_reception": "land.contract_notarized_not_after_reception",
    "transfer_to_self": "land.transferor_differs_from_transferee",
    "missing_parcel_map_sheet": "land_transfer.required.parcel.map_sheet",
}

# Defects that raise a flag (a different fee/procedure case), not a supplement request.
FLAG_DEFECTS = frozenset({"late_registration", "late_death_registration"})

_COMMON = ("citizen_id_placeholder", "citizen_id_wrong_length", "citizen_id_unknown_province",
           "citizen_id_sex_mismatch", "citizen_id_birth_year_mismatch",
           "applicant_name_with_digits", "applicant_name_too_long", "missing_component")
_BY_DECLARATION: dict[str, tuple[str, ...]] = {
    "birth": _COMMON + ("child_sex_mismatch", "child_birth_date_mismatch", "mother_name_mismatch",
                        "birth_after_registration", "child_surname_not_from_parents",
                        "missing_child_place_of_birth", "missing_mother_citizen_id",
                        "late_registration", "residence_without_consent"),
    "death": _COMMON + ("death_after_registration", "missing_death_notice_issuer",
                        "late_death_registration", "funeral_allowance_late",
                        "funeral_without_relationship"),
    "land_transfer": _COMMON + ("contract_after_reception", "transfer_to_self",
                                "missing_parcel_map_sheet"),
}
# Defects that only make sense when the funeral-allowance branch is chosen (3 or 4 procedures).
_FUNERAL_ONLY = frozenset({"funeral_allowance_late", "funeral_without_relationship"})


def defects_for(procedure_id: str) -> tuple[str, ...]:
    """The defects that apply to a catalog procedure."""
    return _BY_DECLARATION[get_catalog().get(procedure_id).declaration]


# --- reference data for fictitious people -------------------------------------------------------

FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
                "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
# Weights roughly follow how common the family names are (Nguyễn alone is about 38 %).
_FAMILY_WEIGHTS = (38, 11, 9.5, 7, 5.1, 5.1, 4.5, 3.9, 3.9, 2.1, 2, 1.4, 1.3, 1.3, 1, 0.5)
MIDDLE_NAMES = {
    "male": ("Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Gia", "Ngọc", "Đình", "Xuân"),
    "female": ("Thị", "Ngọc", "Thu", "Thanh", "Phương", "Bảo", "Khánh", "Minh", "Mai", "Thùy"),
}
GIVEN_NAMES = {
    "male": ("An", "Bình", "Cường", "Dũng", "Hùng", "Huy", "Khang", "Khoa", "Long", "Minh", "Nam",
             "Phúc", "Quân", "Sơn", "Tuấn", "Việt", "Đạt", "Hải", "Hiếu", "Trung", "Thắng", "Tài"),
    "female": ("Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai",
               "Ngân", "Nhung", "Phương", "Quỳnh", "Thảo", "Trang", "Trinh", "Uyên", "Yến", "Vy"),
}
# (commune or ward, province, province code of the citizen ID): real units, post-2025 naming.
PLACES = (
    ("Phường Sài Gòn", "Thành phố Hồ Chí Minh", "079"),
    ("Phường Bình Thạnh", "Thành phố Hồ Chí Minh", "079"),
    ("Phường Hoàn Kiếm", "Thành phố Hà Nội", "001"),
    ("Phường Cầu Giấy", "Thành phố Hà Nội", "001"),
    ("Phường Hải Châu", "Thành phố Đà Nẵng", "048"),
    ("Phường Ninh Kiều", "Thành phố Cần Thơ", "092"),
    ("Phường Thuận Hóa", "Thành phố Huế", "046"),
    ("Phường Vinh Phú", "Tỉnh Nghệ An", "040"),
    ("Xã Tiên Du", "Tỉnh Bắc Ninh", "027"),
    ("Phường Hạc Thành", "Tỉnh Thanh Hóa", "038"),
    ("Phường Nha Trang", "Tỉnh Khánh Hòa", "056"),
    ("Phường Buôn Ma Thuột", "Tỉnh Đắk Lắk", "066"),
    ("Xã Cái Bè", "Tỉnh Đồng Tháp", "087"),
    ("Phường Long Xuyên", "Tỉnh An Giang", "089"),
)
STREETS = ("Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt",
           "Quang Trung", "Phan Chu Trinh", "Nguyễn Trãi", "Lê Duẩn", "Điện Biên Phủ")
ETHNICITIES = ("Kinh",) * 17 + ("Tày", "Thái", "Mường", "Khmer", "Hoa", "Nùng")
# Facilities are named after the place ("Bệnh viện Phụ sản" + province, "Trạm Y tế" + commune).
HOSPITALS = ("Bệnh viện Phụ sản", "Bệnh viện Đa khoa", "Bệnh viện Sản Nhi", "Trạm Y tế")
DEATH_ISSUERS = ("Bệnh viện Đa khoa", "Ủy ban nhân dân", "Trạm Y tế")
# The applicant is one generation younger than the deceased (see ``_death``).
DEATH_RELATIONSHIPS = ("con", "con", "con", "con dâu", "con rể", "cháu")


def _pick_sex(rng: random.Random) -> str:
    return rng.choice(("male", "female"))


def _name(rng: random.Random, sex: str, family: str | None = None) -> str:
    family = family or rng.choices(FAMILY_NAMES, weights=_FAMILY_WEIGHTS)[0]
    return f"{family} {rng.choice(MIDDLE_NAMES[sex])} {rng.choice(GIVEN_NAMES[sex])}"


def _address(rng: random.Random, place: tuple[str, str, str] | None = None) -> str:
    commune, province, _ = place or rng.choice(PLACES)
    return f"Số {rng.randint(1, 350)} đường {rng.choice(STREETS)}, {commune}, {province}"


def _birth_date(rng: random.Random, first_year: int, last_year: int) -> date:
    start = date(first_year, 1, 1)
    return start + timedelta(days=rng.randrange((date(last_year, 12, 31) - start).days + 1))


def _person(rng: random.Random, *, sex: str, born: tuple[int, int], family: str | None = None,
            place: tuple[str, str, str] | None = None, **extra: Any) -> dict[str, Any]:
    place = place or rng.choice(PLACES)
    dob = _birth_date(rng, *born)
    return {
        "full_name": _name(rng, sex, family),
        "citizen_id": make_citizen_id(rng.choice(PLACES)[2], sex, dob.year,  # type: ignore[arg-type]
                                      rng.randrange(1_000_000)),
        "date_of_birth": dob.isoformat(),
        "sex": sex,
        "ethnicity": rng.choice(ETHNICITIES),
        "nationality": "Việt Nam",
        "address": _address(rng, place),
        "phone": f"09{rng.randrange(10**8):08d}",
        **extra,
    }


def _token(rng: random.Random) -> str:
    return f"{rng.getrandbits(48):012x}"


def _components(proc: Procedure, rng: random.Random, options: dict[str, Any], *,
                paper: bool) -> list[dict[str, Any]]:
    """The catalog's components: the required ones, and optional ones when they apply."""
    out = []
    for spec in proc.components:
        if spec.reusable_result:
            continue  # a result of this very procedure (e.g. the death extract): nothing to attach
        if not spec.required:
            if spec.code == "GTMT":  # allowance papers: only with the funeral branch
                if options.get("procedures", 0) not in (3, 4):
                    continue
            elif rng.random() >= 0.3:
                continue
        token = _token(rng)
        if paper and spec.digitize:
            out.append({"code": spec.code, "name": spec.name, "paper": True})
        else:
            out.append({"code": spec.code, "name": spec.name,
                        "file": f"uploads/{spec.code.lower()}-{token}.pdf"})
    return out


# --- one dossier per declaration ------------------------------------------------------------------


def _birth(rng: random.Random, received: date, *, father_applies: bool = False) -> dict[str, Any]:
    place = rng.choice(PLACES)
    mother = _person(rng, sex="female", born=(received.year - 40, received.year - 19), place=place)
    has_father = rng.random() < 0.88 or father_applies
    father = (_person(rng, sex="male", born=(received.year - 45, received.year - 20), place=place)
              if has_father else None)
    if father is not None:
        father["address"] = mother["address"]
    child_sex = _pick_sex(rng)
    surname = (father or mother)["full_name"].split()[0]
    age_days = rng.randrange(0, 58)
    dob = received - timedelta(days=age_days)
    kind = rng.choice(HOSPITALS)
    hospital = f"{kind} {place[0] if kind == 'Trạm Y tế' else place[1]}"
    parent = mother if (father is None or rng.random() < 0.6) and not father_applies else father
    assert parent is not None
    applicant = {**parent, "relationship": "mẹ" if parent is mother else "cha"}
    return {
        "applicant": applicant,
        "registration_date": received.isoformat(),
        "child": {
            "full_name": _name(rng, child_sex, surname),
            "sex": child_sex,
            "date_of_birth": dob.isoformat(),
            "birth_time": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}",
            "place_of_birth": f"{kind}, {place[0]}, {place[1]}",
            "hometown": place[1],
            "ethnicity": (father or mother)["ethnicity"],
            "nationality": "Việt Nam",
        },
        "mother": mother,
        "father": father,
        "birth_certificate": {
            "number": f"{rng.randrange(1, 100000):05d}/GCS",
            "issued_on": (dob + timedelta(days=min(rng.randrange(3), age_days))).isoformat(),
            "child_sex": child_sex,
            "child_date_of_birth": dob.isoformat(),
            "mother_full_name": mother["full_name"],
            "issuer": hospital,
            "weight_grams": rng.randrange(2300, 4200, 10),
        },
        "extra": {"residence": {
            "address": mother["address"],
            "household_head": (father or mother)["full_name"],
            "relationship_to_head": "con",
            "household_head_consent": True,
        }},
    }


def _death(rng: random.Random, received: date, options: dict[str, Any]) -> dict[str, Any]:
    place = rng.choice(PLACES)
    sex = _pick_sex(rng)
    deceased = _person(rng, sex=sex, born=(received.year - 95, received.year - 45), place=place)
    days_ago = rng.randrange(0, 14)
    dod = received - timedelta(days=days_ago)
    deceased.pop("phone")
    deceased.update({
        "date_of_death": dod.isoformat(),
        "place_of_death": rng.choice(("Tại nhà", "Bệnh viện")) + f", {place[1]}",
        "cause_of_death": rng.choice(("Bệnh", "Tuổi già", "Tai nạn")),
    })
    born_min = int(deceased["date_of_birth"][:4]) + 18
    applicant = _person(rng, sex=_pick_sex(rng),
                        born=(max(born_min, received.year - 75), received.year - 18), place=place,
                        relationship=rng.choice(DEATH_RELATIONSHIPS))
    applicant["address"] = deceased["address"]
    return {
        "applicant": applicant,
        "registration_date": received.isoformat(),
        "deceased": deceased,
        "death_notice": {
            "number": f"{rng.randrange(1, 100000):05d}/GBT",
            "issued_on": (dod + timedelta(days=min(rng.randrange(2), days_ago))).isoformat(),
            "issuer": f"{rng.choice(DEATH_ISSUERS)} {place[0]}",
        },
        "options": options,
    }


def _land(rng: random.Random, received: date) -> dict[str, Any]:
    transferor = _person(rng, sex=_pick_sex(rng), born=(received.year - 80, received.year - 25))
    transferee = _person(rng, sex=_pick_sex(rng), born=(received.year - 70, received.year - 20))
    commune, province, _ = rng.choice(PLACES)
    return {
        "applicant": dict(transferee),
        "transferor": transferor,
        "transferee": transferee,
        "parcel": {
            "certificate_number": f"{rng.choice('ABCDEFGH')}{rng.choice('ABCDEFGH')} "
                                  f"{rng.randrange(10**6):06d}",
            "parcel_number": str(rng.randint(1, 999)),
            "map_sheet": str(rng.randint(1, 80)),
            "area_m2": round(rng.uniform(40, 500), 1),
            "address": f"Thửa đất tại {commune}, {province}",
        },
        "contract": {
            "number": f"{rng.randint(1, 9999)}/{received.year}/HĐCN",
            "notarized_on": (received - timedelta(days=rng.randint(1, 30))).isoformat(),
            "price_vnd": rng.randint(500, 8000) * 1_000_000,
        },
    }


def _death_options(rng: random.Random, given: dict[str, Any] | None) -> dict[str, Any]:
    chosen = {"procedures": rng.choice((2, 3, 3, 4)),
              "funeral_body": rng.choice(("bhxh", "bhxh", "bhxh", "bao_tro_xa_hoi"))}
    chosen.update(given or {})
    return chosen


def make_submission(procedure_id: str, rng: random.Random, received_at: datetime, *,
                    defects: Sequence[str] = (), paper_components: bool = False,
                    options: dict[str, Any] | None = None) -> Submission:
    """One synthetic dossier of a catalog procedure, received at ``received_at``.

    Each name in ``defects`` (see :data:`DEFECTS`) breaks exactly one rule; the payload stays
    schema-valid. With ``paper_components`` the components to digitize are paper ones (no file).
    """
    # The version in force on the reception day: its code, components and options.
    proc = get_catalog().get(procedure_id, on=localize(received_at).date())
    unknown = [d for d in defects if d not in DEFECTS]
    if unknown:
        raise ValueError(f"unknown defect(s) {unknown}; known: {', '.join(DEFECTS)}")
    inapplicable = [d for d in defects if d not in _BY_DECLARATION[proc.declaration]]
    if inapplicable:
        raise ValueError(f"defect(s) {inapplicable} do not apply to {proc.id}")
    received_at = localize(received_at)
    received = received_at.date()
    if proc.declaration == "birth":
        # Without the mother's ID the father must be the applicant, or two rules would break.
        body = _birth(rng, received, father_applies="missing_mother_citizen_id" in defects)
    elif proc.declaration == "death":
        opts = _death_options(rng, options)
        if _FUNERAL_ONLY & set(defects) and opts["procedures"] not in (3, 4):
            opts["procedures"] = 3
        if "funeral_allowance_late" in defects:  # the 90-day rule is social insurance's only
            opts["funeral_body"] = "bhxh"
        body = _death(rng, received, opts)
    elif proc.declaration == "land_transfer":
        body = _land(rng, received)
    else:  # pragma: no cover - a new declaration kind needs its generator
        raise ValueError(f"no generator for declaration {proc.declaration!r}")
    payload: dict[str, Any] = {
        "procedure_code": proc.code,
        "received_at": received_at.isoformat(),
        "channel": rng.choice(("in_person", "online", "online", "postal")),
        **body,
    }
    payload.setdefault("options", {})
    payload["components"] = _components(proc, rng, payload["options"], paper=paper_components)
    # Only the choices this procedure offers travel with it (a stand-alone allowance has none).
    payload["options"] = {k: v for k, v in payload["options"].items() if k in proc.options}
    for defect in defects:
        _apply_defect(payload, defect, rng, received)
    return Submission.model_validate(payload)


def _apply_defect(p: dict[str, Any], defect: str, rng: random.Random, received: date) -> None:
    applicant = p["applicant"]
    cid = applicant["citizen_id"]
    if defect == "citizen_id_placeholder":
        applicant["citizen_id"] = "000000001"
    elif defect == "citizen_id_wrong_length":
        applicant["citizen_id"] = cid[:-1]
    elif defect == "citizen_id_unknown_province":
        applicant["citizen_id"] = "003" + cid[3:]  # 003 is not in the province table
    elif defect == "citizen_id_sex_mismatch":
        g = int(cid[3])
        applicant["citizen_id"] = cid[:3] + str(g ^ 1) + cid[4:]  # same century, other sex
    elif defect == "citizen_id_birth_year_mismatch":
        yy = (int(cid[4:6]) + rng.randint(1, 5)) % 100
        year = int(applicant["date_of_birth"][:4])
        yy = yy if (year // 100) * 100 + yy <= received.year else (int(cid[4:6]) - 3) % 100
        applicant["citizen_id"] = cid[:4] + f"{yy:02d}" + cid[6:]
    elif defect == "applicant_name_with_digits":
        applicant["full_name"] = applicant["full_name"] + " 2"
    elif defect == "applicant_name_too_long":
        family, *rest = applicant["full_name"].split()
        applicant["full_name"] = " ".join([family, *(["Nguyễn Hoàng Phương Thảo"] * 3), *rest])
    elif defect == "missing_component":
        required = [c for c in p["components"] if c["code"] in _required_codes(p)]
        p["components"].remove(rng.choice(required))
    elif defect == "child_sex_mismatch":
        cert = p["birth_certificate"]
        cert["child_sex"] = "female" if cert["child_sex"] == "male" else "male"
    elif defect == "child_birth_date_mismatch":
        cert = p["birth_certificate"]
        cert["child_date_of_birth"] = (date.fromisoformat(cert["child_date_of_birth"])
                                       - timedelta(days=rng.randint(1, 3))).isoformat()
    elif defect == "mother_name_mismatch":
        cert = p["birth_certificate"]
        family = cert["mother_full_name"].split()[0]
        other = rng.choice([f for f in FAMILY_NAMES if f != family])
        cert["mother_full_name"] = " ".join([other, *cert["mother_full_name"].split()[1:]])
    elif defect == "birth_after_registration":
        later = received + timedelta(days=rng.randint(1, 5))
        p["child"]["date_of_birth"] = later.isoformat()
        p["birth_certificate"]["child_date_of_birth"] = later.isoformat()
        p["birth_certificate"]["issued_on"] = later.isoformat()
    elif defect == "child_surname_not_from_parents":
        parents = {p["mother"]["full_name"].split()[0]}
        if p.get("father"):
            parents.add(p["father"]["full_name"].split()[0])
        other = rng.choice([f for f in FAMILY_NAMES if f not in parents])
        p["child"]["full_name"] = " ".join([other, *p["child"]["full_name"].split()[1:]])
    elif defect == "missing_child_place_of_birth":
        p["child"]["place_of_birth"] = None
    elif defect == "missing_mother_citizen_id":
        p["mother"]["citizen_id"] = None
    elif defect == "late_registration":
        dob = received - timedelta(days=rng.randint(61, 300))
        p["child"]["date_of_birth"] = dob.isoformat()
        p["birth_certificate"]["child_date_of_birth"] = dob.isoformat()
        p["birth_certificate"]["issued_on"] = dob.isoformat()
    elif defect == "residence_without_consent":
        p["extra"]["residence"]["household_head_consent"] = False
    elif defect == "death_after_registration":
        later = received + timedelta(days=rng.randint(1, 5))
        p["deceased"]["date_of_death"] = later.isoformat()
        p["death_notice"]["issued_on"] = later.isoformat()
    elif defect == "missing_death_notice_issuer":
        p["death_notice"]["issuer"] = ""
    elif defect == "late_death_registration":
        dod = received - timedelta(days=rng.randint(16, 80))
        p["deceased"]["date_of_death"] = dod.isoformat()
        p["death_notice"]["issued_on"] = dod.isoformat()
    elif defect == "funeral_allowance_late":
        dod = received - timedelta(days=rng.randint(91, 200))
        p["deceased"]["date_of_death"] = dod.isoformat()
        p["death_notice"]["issued_on"] = dod.isoformat()
    elif defect == "funeral_without_relationship":
        applicant["relationship"] = None
    elif defect == "contract_after_reception":
        p["contract"]["notarized_on"] = (received + timedelta(days=rng.randint(1, 10))).isoformat()
    elif defect == "transfer_to_self":
        p["transferee"] = dict(p["transferor"])
        p["applicant"] = dict(p["transferee"])
    elif defect == "missing_parcel_map_sheet":
        p["parcel"]["map_sheet"] = ""


def _required_codes(p: dict[str, Any]) -> set[str]:
    proc = get_catalog().get(p["procedure_code"])
    return {c.code for c in proc.components if c.required}


def make_batch(n: int, seed: int, start: datetime, *, procedures: Sequence[str] | None = None,
               defect_rate: float = 0.0) -> list[Submission]:
    """``n`` dossiers received over the working day from ``start``, in reception order.

    With ``defect_rate`` > 0, that share of dossiers carries one defect drawn from those that apply
    to its procedure (flags included: a late registration is a realistic input too).
    """
    rng = random.Random(seed)
    ids = list(procedures) if procedures else [p.id for p in get_catalog()]
    start = localize(start)
    offsets = sorted(rng.randrange(8 * 3600) for _ in range(n))
    out = []
    for offset in offsets:
        proc_id = rng.choice(ids)
        defects: tuple[str, ...] = ()
        if defect_rate and rng.random() < defect_rate:
            defects = (rng.choice(defects_for(proc_id)),)
        out.append(make_submission(proc_id, rng, start + timedelta(seconds=offset),
                                   defects=defects))
    return out
