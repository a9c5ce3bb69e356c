"""The clinical body map: the drawings practitioners tap to chart where they injected.

This is our own body-area code system. SNOMED CT body-site codes would be the standard choice, but using
them needs a licence in many countries (domain.md R-OUT, R-IND), so the codes here (``thigh-front-left``,
``submental``...) are ours, with room for an optional SNOMED CT mapping a licensed clinic can load. They
are stable identifiers: never rename one once it is stored.

Pure data, no Django (labels are only marked for translation with ``_``): ``VIEWS`` are the drawings,
``AREAS`` the tappable zones on them. The server accepts
a charted point only if it lies inside the polygon (``outline``) of the area it is charted against; the
polygons of one view never overlap and each one holds at least a 10 x 10 square (face and scalp) or an
8 x 8 square (body), so a fingertip can hit it.

Coordinates are SVG user units of each view's ``viewBox="0 0 width height"``: x grows to the right,
y grows DOWNWARDS.

* ``front``: the whole body from the front, 200 x 440, standing, arms slightly away from the body,
  head at the top, feet at the bottom.
* ``back``: the whole body from behind, same size and silhouette as ``front``.
* ``face``: the face and neck from the front, 200 x 260, top of the head at the top.
* ``scalp``: the head seen from directly above, 200 x 220, forehead (face side) at the TOP of the drawing,
  back of the head at the bottom, ears at the sides.

Laterality: ``side`` is always the PATIENT's side, never the viewer's.

* ``front`` and ``face`` show the patient facing the viewer, so the patient's LEFT is on the viewer's
  RIGHT (x > width / 2).
* ``back`` shows the patient from behind, so the patient's LEFT is on the viewer's LEFT (x < width / 2).
* ``scalp`` is seen from above with the face at the top: like standing behind the patient and looking
  down on their head, so the patient's LEFT is on the viewer's LEFT (x < width / 2), as in ``back``.

Left/right areas are mirror images of each other about x = width / 2. ``silhouette`` is a polygonal SVG
path (``M``/``L``/``Z`` only) drawn behind the areas; in ``face`` it has extra subpaths for the eyes,
wound the other way round so that they are holes whatever the fill rule.
"""

from __future__ import annotations

from typing import TypedDict


def _(text: str) -> str:
    """Marks a label for the translation catalogue (makemessages); the label is stored in English and
    translated where it is shown."""
    return text


class ViewSpec(TypedDict):
    label: str  # English, e.g. "Front"
    width: int  # the SVG viewBox is "0 0 width height"
    height: int
    silhouette: str  # SVG path "d": the decorative outline of the body or head drawn behind the areas


class AreaSpec(TypedDict):
    code: str  # stable identifier, e.g. "thigh-front-left"
    region: str  # grouping, e.g. "thighs"
    side: str  # "left", "right" or "": the PATIENT's side
    view: str  # key of VIEWS
    label: str  # English, e.g. "Front of left thigh"
    outline: list[tuple[float, float]]  # polygon vertices in view units, the first not repeated at the end


# Front and back share one outline: the figure is symmetric and drawn without features.
_BODY_SILHOUETTE = (
    "M 100 9 L 92 10.5 L 86 14.5 L 82.6 22 L 81.8 32 L 82.4 42 L 84.2 50 L 87.2 56.5 "
    "L 90.4 60.6 L 90.8 66 L 89.8 72 L 80 75.5 L 69 78.5 L 61 81.5 L 56.5 85.5 L 54.2 90 "
    "L 51 102 L 48 118 L 45.8 140 L 44 168 L 41 200 L 37.5 236 L 36 246 L 33.5 256 L 32 268 "
    "L 32.8 277 L 35.8 282 L 39.2 281.5 L 41.5 274 L 43 263 L 45.5 250 L 48 238 L 52.5 205 "
    "L 57.5 174 L 61.5 142 L 65.5 115 L 67.2 113 L 68.2 125 L 70 145 L 72 176 L 70.5 192 "
    "L 67 208 L 64.5 224 L 64 240 L 65.5 258 L 68 278 L 71.5 298 L 73.8 316 L 73.6 332 "
    "L 72.8 350 L 74.8 370 L 78.5 392 L 81.2 404 L 81.5 412 L 78.5 421 L 77.2 428 L 78.8 432.5 "
    "L 88 433.5 L 95.8 432 L 96.4 424 L 95.2 412 L 94.5 400 L 93.3 376 L 93.6 350 L 94.6 332 "
    "L 95.2 318 L 96.6 300 L 98.4 276 L 99.2 258 L 100 250 L 100.8 258 L 101.6 276 L 103.4 300 "
    "L 104.8 318 L 105.4 332 L 106.4 350 L 106.7 376 L 105.5 400 L 104.8 412 L 103.6 424 "
    "L 104.2 432 L 112 433.5 L 121.2 432.5 L 122.8 428 L 121.5 421 L 118.5 412 L 118.8 404 "
    "L 121.5 392 L 125.2 370 L 127.2 350 L 126.4 332 L 126.2 316 L 128.5 298 L 132 278 "
    "L 134.5 258 L 136 240 L 135.5 224 L 133 208 L 129.5 192 L 128 176 L 130 145 L 131.8 125 "
    "L 132.8 113 L 134.5 115 L 138.5 142 L 142.5 174 L 147.5 205 L 152 238 L 154.5 250 "
    "L 157 263 L 158.5 274 L 160.8 281.5 L 164.2 282 L 167.2 277 L 168 268 L 166.5 256 "
    "L 164 246 L 162.5 236 L 159 200 L 156 168 L 154.2 140 L 152 118 L 149 102 L 145.8 90 "
    "L 143.5 85.5 L 139 81.5 L 131 78.5 L 120 75.5 L 110.2 72 L 109.2 66 L 109.6 60.6 "
    "L 112.8 56.5 L 115.8 50 L 117.6 42 L 118.2 32 L 117.4 22 L 114 14.5 L 108 10.5 Z"
)

VIEWS: dict[str, ViewSpec] = {
    "front": {
        "label": _("Front"),
        "width": 200,
        "height": 440,
        "silhouette": _BODY_SILHOUETTE,
    },
    "back": {
        "label": _("Back"),
        "width": 200,
        "height": 440,
        "silhouette": _BODY_SILHOUETTE,
    },
    "face": {
        "label": _("Face and neck"),
        "width": 200,
        "height": 260,
        "silhouette": (
            "M 100 10 L 84 11.5 L 70 15.5 L 58.5 22 L 49.5 31 L 43.5 43 L 40 56 L 38.8 70 L 38.6 88 "
            "L 35 86 L 31 90 L 29.6 102 L 30.6 116 L 33.4 128 L 37.6 136 L 41 137 L 43 150 L 46 162 "
            "L 51 173 L 58 182 L 64.5 189 L 64 204 L 63.4 222 L 62 236 L 52 246 L 34 252 L 14 256 "
            "L 4 258 L 100 258 L 196 258 L 186 256 L 166 252 L 148 246 L 138 236 L 136.6 222 L 136 204 "
            "L 135.5 189 L 142 182 L 149 173 L 154 162 L 157 150 L 159 137 L 162.4 136 L 166.6 128 "
            "L 169.4 116 L 170.4 102 L 169 90 L 165 86 L 161.4 88 L 161.2 70 L 160 56 L 156.5 43 "
            "L 150.5 31 L 141.5 22 L 130 15.5 L 116 11.5 Z "
            "M 62 103.6 L 70 105.2 L 78 103.6 L 83 100 L 78 96.4 L 70 94.8 L 62 96.4 L 57 100 Z "
            "M 143 100 L 138 96.4 L 130 94.8 L 122 96.4 L 117 100 L 122 103.6 L 130 105.2 L 138 103.6 Z"
        ),
    },
    "scalp": {
        "label": _("Scalp (from above)"),
        "width": 200,
        "height": 220,
        "silhouette": (
            "M 100 6 L 96.6 7.6 L 93.8 11.6 L 86 15.5 L 72 19 L 59 25.5 L 48 35 L 39.5 48 L 33.5 64 "
            "L 30 82 L 28.6 98 L 24.5 100 L 20.5 106 L 20 118 L 22 128 L 27.6 131 L 27.6 146 L 29.5 162 "
            "L 34.5 178 L 43 192 L 55 203 L 70 210.5 L 85 214.2 L 100 215 L 115 214.2 L 130 210.5 "
            "L 145 203 L 157 192 L 165.5 178 L 170.5 162 L 172.4 146 L 172.4 131 L 178 128 L 180 118 "
            "L 179.5 106 L 175.5 100 L 171.4 98 L 170 82 L 166.5 64 L 160.5 48 L 152 35 L 141 25.5 "
            "L 128 19 L 114 15.5 L 106.2 11.6 L 103.4 7.6 Z"
        ),
    },
}

# One area per entry; outlines are kept compact rather than one vertex per line.
# fmt: off
AREAS: list[AreaSpec] = [
    # front: the patient's left is on the viewer's right (x > 100)
    {
        "code": "decolletage", "region": "decolletage", "side": "", "view": "front",
        "label": _("Décolletage"),
        "outline": [(77.0, 84.0), (89.0, 79.0), (100.0, 82.0), (111.0, 79.0), (123.0, 84.0), (118.0, 100.0),
            (100.0, 114.0), (82.0, 100.0)],
    },
    {
        "code": "arm-front-left", "region": "arms", "side": "left", "view": "front",
        "label": _("Front of left upper arm"),
        "outline": [(149.4, 112.0), (151.4, 134.0), (152.5, 158.0), (141.5, 158.0), (139.0, 136.0),
            (136.4, 117.0), (141.0, 103.0), (146.5, 100.0)],
    },
    {
        "code": "arm-front-right", "region": "arms", "side": "right", "view": "front",
        "label": _("Front of right upper arm"),
        "outline": [(53.5, 100.0), (59.0, 103.0), (63.6, 117.0), (61.0, 136.0), (58.5, 158.0), (47.5, 158.0),
            (48.6, 134.0), (50.6, 112.0)],
    },
    {
        "code": "abdomen", "region": "abdomen", "side": "", "view": "front",
        "label": _("Abdomen"),
        "outline": [(86.5, 148.0), (113.5, 148.0), (115.5, 174.0), (114.5, 200.0), (113.0, 222.0),
            (100.0, 234.0), (87.0, 222.0), (85.5, 200.0), (84.5, 174.0)],
    },
    {
        "code": "flank-left", "region": "flanks", "side": "left", "view": "front",
        "label": _("Left flank (love handle)"),
        "outline": [(127.6, 160.0), (126.4, 176.0), (128.2, 190.0), (129.2, 198.0), (115.5, 198.0),
            (116.5, 174.0), (115.5, 148.0), (128.0, 148.0)],
    },
    {
        "code": "flank-right", "region": "flanks", "side": "right", "view": "front",
        "label": _("Right flank (love handle)"),
        "outline": [(72.0, 148.0), (84.5, 148.0), (83.5, 174.0), (84.5, 198.0), (70.8, 198.0), (71.8, 190.0),
            (73.6, 176.0), (72.4, 160.0)],
    },
    {
        "code": "hip-left", "region": "hips", "side": "left", "view": "front",
        "label": _("Left hip (saddlebag)"),
        "outline": [(133.9, 224.0), (134.1, 240.0), (133.2, 258.0), (129.6, 271.0), (124.0, 262.0),
            (120.4, 242.0), (119.4, 222.0), (121.5, 206.0), (130.5, 204.0)],
    },
    {
        "code": "hip-right", "region": "hips", "side": "right", "view": "front",
        "label": _("Right hip (saddlebag)"),
        "outline": [(69.5, 204.0), (78.5, 206.0), (80.6, 222.0), (79.6, 242.0), (76.0, 262.0), (70.4, 271.0),
            (66.8, 258.0), (65.9, 240.0), (66.1, 224.0)],
    },
    {
        "code": "thigh-front-left", "region": "thighs", "side": "left", "view": "front",
        "label": _("Front of left thigh"),
        "outline": [(118.2, 245.0), (121.6, 264.0), (125.2, 273.0), (128.8, 279.0), (127.4, 293.0),
            (124.0, 304.0), (111.4, 302.0), (113.4, 276.0), (112.4, 251.0), (117.4, 239.0)],
    },
    {
        "code": "thigh-front-right", "region": "thighs", "side": "right", "view": "front",
        "label": _("Front of right thigh"),
        "outline": [(82.6, 239.0), (87.6, 251.0), (86.6, 276.0), (88.6, 302.0), (76.0, 304.0), (72.6, 293.0),
            (71.2, 279.0), (74.8, 273.0), (78.4, 264.0), (81.8, 245.0)],
    },
    {
        "code": "thigh-inner-left", "region": "thighs", "side": "left", "view": "front",
        "label": _("Inner left thigh"),
        "outline": [(112.2, 276.0), (109.6, 299.5), (104.4, 298.0), (102.4, 274.0), (102.0, 256.0),
            (111.4, 250.0)],
    },
    {
        "code": "thigh-inner-right", "region": "thighs", "side": "right", "view": "front",
        "label": _("Inner right thigh"),
        "outline": [(88.6, 250.0), (98.0, 256.0), (97.6, 274.0), (95.6, 298.0), (90.4, 299.5), (87.8, 276.0)],
    },
    {
        "code": "knee-left", "region": "legs", "side": "left", "view": "front",
        "label": _("Inner left knee"),
        "outline": [(115.8, 319.5), (114.0, 331.5), (106.6, 331.5), (106.2, 320.0), (106.0, 308.5),
            (114.8, 307.5)],
    },
    {
        "code": "knee-right", "region": "legs", "side": "right", "view": "front",
        "label": _("Inner right knee"),
        "outline": [(85.2, 307.5), (94.0, 308.5), (93.8, 320.0), (93.4, 331.5), (86.0, 331.5), (84.2, 319.5)],
    },
    {
        "code": "leg-front-left", "region": "legs", "side": "left", "view": "front",
        "label": _("Front of left lower leg (shin)"),
        "outline": [(124.4, 356.0), (121.4, 381.0), (117.6, 400.0), (113.0, 400.0), (108.0, 385.0),
            (108.2, 360.0), (107.6, 338.0), (122.5, 338.0)],
    },
    {
        "code": "leg-front-right", "region": "legs", "side": "right", "view": "front",
        "label": _("Front of right lower leg (shin)"),
        "outline": [(77.5, 338.0), (92.4, 338.0), (91.8, 360.0), (92.0, 385.0), (87.0, 400.0), (82.4, 400.0),
            (78.6, 381.0), (75.6, 356.0)],
    },
    # back: the patient's left is on the viewer's left (x < 100)
    {
        "code": "back-upper", "region": "back", "side": "", "view": "back",
        "label": _("Upper back (bra line)"),
        "outline": [(69.2, 118.0), (130.8, 118.0), (128.4, 150.0), (71.6, 150.0)],
    },
    {
        "code": "arm-back-left", "region": "arms", "side": "left", "view": "back",
        "label": _("Back of left upper arm (triceps)"),
        "outline": [(53.5, 99.0), (59.5, 102.0), (63.6, 117.0), (61.0, 138.0), (58.4, 160.0), (47.4, 160.0),
            (48.5, 134.0), (50.6, 112.0)],
    },
    {
        "code": "arm-back-right", "region": "arms", "side": "right", "view": "back",
        "label": _("Back of right upper arm (triceps)"),
        "outline": [(149.4, 112.0), (151.5, 134.0), (152.6, 160.0), (141.6, 160.0), (139.0, 138.0),
            (136.4, 117.0), (140.5, 102.0), (146.5, 99.0)],
    },
    {
        "code": "back-lower", "region": "back", "side": "", "view": "back",
        "label": _("Lower back (lumbar)"),
        "outline": [(72.5, 160.0), (127.5, 160.0), (126.5, 178.0), (128.5, 194.0), (118.0, 206.0),
            (100.0, 209.0), (82.0, 206.0), (71.5, 194.0), (73.5, 178.0)],
    },
    {
        "code": "buttock-left", "region": "buttocks", "side": "left", "view": "back",
        "label": _("Left buttock"),
        "outline": [(72.0, 214.0), (84.0, 211.0), (98.8, 213.5), (98.8, 248.0), (96.0, 258.0), (88.0, 262.0),
            (77.0, 261.0), (69.0, 255.0), (66.0, 240.0), (66.5, 226.0)],
    },
    {
        "code": "buttock-right", "region": "buttocks", "side": "right", "view": "back",
        "label": _("Right buttock"),
        "outline": [(133.5, 226.0), (134.0, 240.0), (131.0, 255.0), (123.0, 261.0), (112.0, 262.0),
            (104.0, 258.0), (101.2, 248.0), (101.2, 213.5), (116.0, 211.0), (128.0, 214.0)],
    },
    {
        "code": "thigh-back-left", "region": "thighs", "side": "left", "view": "back",
        "label": _("Back of left thigh (incl. banana roll)"),
        "outline": [(69.5, 267.0), (84.0, 266.0), (97.6, 265.0), (97.1, 280.0), (95.4, 300.0), (88.0, 305.0),
            (76.0, 305.0), (72.2, 292.0)],
    },
    {
        "code": "thigh-back-right", "region": "thighs", "side": "right", "view": "back",
        "label": _("Back of right thigh (incl. banana roll)"),
        "outline": [(127.8, 292.0), (124.0, 305.0), (112.0, 305.0), (104.6, 300.0), (102.9, 280.0),
            (102.4, 265.0), (116.0, 266.0), (130.5, 267.0)],
    },
    {
        "code": "leg-back-left", "region": "legs", "side": "left", "view": "back",
        "label": _("Left calf"),
        "outline": [(75.6, 340.0), (92.5, 340.0), (92.0, 362.0), (92.4, 384.0), (86.0, 398.0), (82.2, 398.0),
            (78.6, 380.0), (75.6, 358.0)],
    },
    {
        "code": "leg-back-right", "region": "legs", "side": "right", "view": "back",
        "label": _("Right calf"),
        "outline": [(124.4, 358.0), (121.4, 380.0), (117.8, 398.0), (114.0, 398.0), (107.6, 384.0),
            (108.0, 362.0), (107.5, 340.0), (124.4, 340.0)],
    },
    # face: the patient's left is on the viewer's right (x > 100)
    {
        "code": "forehead", "region": "forehead", "side": "", "view": "face",
        "label": _("Forehead"),
        "outline": [(60.5, 60.0), (68.0, 45.0), (84.0, 36.0), (100.0, 34.0), (116.0, 36.0), (132.0, 45.0),
            (139.5, 60.0), (140.0, 74.0), (124.0, 80.0), (100.0, 82.0), (76.0, 80.0), (60.0, 74.0)],
    },
    {
        "code": "periorbital-left", "region": "periorbital", "side": "left", "view": "face",
        "label": _("Left periorbital (crow's feet, under-eye)"),
        "outline": [(156.0, 108.0), (150.0, 116.5), (140.0, 121.0), (127.0, 121.5), (116.0, 117.0),
            (113.5, 110.0), (121.0, 107.6), (130.0, 108.8), (139.0, 107.0), (144.5, 102.5), (147.0, 96.0),
            (146.5, 88.0), (155.4, 86.0), (157.8, 95.0)],
    },
    {
        "code": "periorbital-right", "region": "periorbital", "side": "right", "view": "face",
        "label": _("Right periorbital (crow's feet, under-eye)"),
        "outline": [(42.2, 95.0), (44.6, 86.0), (53.5, 88.0), (53.0, 96.0), (55.5, 102.5), (61.0, 107.0),
            (70.0, 108.8), (79.0, 107.6), (86.5, 110.0), (84.0, 117.0), (73.0, 121.5), (60.0, 121.0),
            (50.0, 116.5), (44.0, 108.0)],
    },
    {
        "code": "cheek-left", "region": "cheeks", "side": "left", "view": "face",
        "label": _("Left cheek"),
        "outline": [(156.4, 130.0), (155.4, 140.0), (151.5, 150.0), (140.0, 152.5), (128.5, 150.5),
            (122.4, 145.0), (118.0, 134.0), (116.0, 122.5), (126.0, 126.5), (138.0, 127.0), (148.0, 124.5),
            (155.0, 121.0)],
    },
    {
        "code": "cheek-right", "region": "cheeks", "side": "right", "view": "face",
        "label": _("Right cheek"),
        "outline": [(45.0, 121.0), (52.0, 124.5), (62.0, 127.0), (74.0, 126.5), (84.0, 122.5), (82.0, 134.0),
            (77.6, 145.0), (71.5, 150.5), (60.0, 152.5), (48.5, 150.0), (44.6, 140.0), (43.6, 130.0)],
    },
    {
        "code": "perioral", "region": "perioral", "side": "", "view": "face",
        "label": _("Perioral (around the mouth)"),
        "outline": [(86.0, 146.0), (100.0, 145.0), (114.0, 146.0), (121.5, 156.0), (123.0, 168.0),
            (119.0, 178.5), (100.0, 181.5), (81.0, 178.5), (77.0, 168.0), (78.5, 156.0)],
    },
    {
        "code": "jawline-left", "region": "jawline", "side": "left", "view": "face",
        "label": _("Left jawline"),
        "outline": [(154.4, 155.0), (152.1, 161.5), (147.3, 172.0), (140.5, 180.7), (134.0, 187.6),
            (128.0, 192.4), (123.0, 195.8), (120.8, 193.5), (122.0, 185.0), (125.0, 176.5), (128.5, 168.0),
            (134.0, 161.0), (142.0, 156.5), (152.5, 153.5)],
    },
    {
        "code": "jawline-right", "region": "jawline", "side": "right", "view": "face",
        "label": _("Right jawline"),
        "outline": [(47.5, 153.5), (58.0, 156.5), (66.0, 161.0), (71.5, 168.0), (75.0, 176.5), (78.0, 185.0),
            (79.2, 193.5), (77.0, 195.8), (72.0, 192.4), (66.0, 187.6), (59.5, 180.7), (52.7, 172.0),
            (47.9, 161.5), (45.6, 155.0)],
    },
    {
        "code": "chin", "region": "chin", "side": "", "view": "face",
        "label": _("Chin"),
        "outline": [(84.0, 184.5), (100.0, 186.0), (116.0, 184.5), (119.0, 192.0), (112.0, 199.0),
            (100.0, 201.0), (88.0, 199.0), (81.0, 192.0)],
    },
    {
        "code": "submental", "region": "submental", "side": "", "view": "face",
        "label": _("Submental (under the chin)"),
        "outline": [(68.0, 197.0), (79.0, 203.0), (90.0, 205.5), (100.0, 206.0), (110.0, 205.5),
            (121.0, 203.0), (132.0, 197.0), (133.8, 206.0), (127.0, 215.0), (114.0, 219.5), (100.0, 220.5),
            (86.0, 219.5), (73.0, 215.0), (66.2, 206.0)],
    },
    {
        "code": "neck", "region": "neck", "side": "", "view": "face",
        "label": _("Front of neck"),
        "outline": [(70.0, 226.0), (86.0, 228.0), (100.0, 228.5), (114.0, 228.0), (130.0, 226.0),
            (133.0, 240.0), (136.0, 252.0), (100.0, 254.0), (64.0, 252.0), (67.0, 240.0)],
    },
    # scalp, from above with the face at the top: the patient's left is on the viewer's left
    # (x < 100), as when standing behind the patient and looking down on the head
    {
        "code": "scalp-frontal", "region": "scalp", "side": "", "view": "scalp",
        "label": _("Frontal scalp (hairline)"),
        "outline": [(62.0, 34.0), (80.0, 25.5), (100.0, 23.0), (120.0, 25.5), (138.0, 34.0), (152.0, 46.0),
            (143.5, 57.0), (122.0, 48.0), (100.0, 45.0), (78.0, 48.0), (56.5, 57.0), (48.0, 46.0)],
    },
    {
        "code": "scalp-temporal-left", "region": "scalp", "side": "left", "view": "scalp",
        "label": _("Left temporal scalp"),
        "outline": [(41.0, 58.0), (53.5, 66.0), (56.5, 82.0), (55.5, 100.0), (54.0, 120.0), (33.0, 120.0),
            (32.5, 98.0), (35.0, 76.0)],
    },
    {
        "code": "scalp-temporal-right", "region": "scalp", "side": "right", "view": "scalp",
        "label": _("Right temporal scalp"),
        "outline": [(165.0, 76.0), (167.5, 98.0), (167.0, 120.0), (146.0, 120.0), (144.5, 100.0),
            (143.5, 82.0), (146.5, 66.0), (159.0, 58.0)],
    },
    {
        "code": "scalp-midscalp", "region": "scalp", "side": "", "view": "scalp",
        "label": _("Mid-scalp"),
        "outline": [(62.0, 66.0), (80.0, 54.0), (100.0, 51.0), (120.0, 54.0), (138.0, 66.0), (141.5, 82.0),
            (140.0, 100.0), (122.0, 106.0), (100.0, 108.0), (78.0, 106.0), (60.0, 100.0), (58.5, 82.0)],
    },
    {
        "code": "scalp-vertex", "region": "scalp", "side": "", "view": "scalp",
        "label": _("Crown (vertex)"),
        "outline": [(68.0, 118.0), (84.0, 113.0), (100.0, 112.0), (116.0, 113.0), (132.0, 118.0),
            (137.0, 134.0), (130.0, 150.0), (116.0, 157.0), (100.0, 159.0), (84.0, 157.0), (70.0, 150.0),
            (63.0, 134.0)],
    },
    {
        "code": "scalp-occipital", "region": "scalp", "side": "", "view": "scalp",
        "label": _("Back of the head (occipital)"),
        "outline": [(34.0, 156.0), (58.0, 160.0), (74.0, 164.0), (100.0, 168.0), (126.0, 164.0),
            (142.0, 160.0), (166.0, 156.0), (163.0, 174.0), (153.0, 189.0), (138.0, 200.0), (120.0, 206.5),
            (100.0, 208.5), (80.0, 206.5), (62.0, 200.0), (47.0, 189.0), (37.0, 174.0)],
    },
]
# fmt: on
