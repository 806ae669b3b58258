"""Reference pools of the generator (data): destinations, SKU mix, exporters, name words, places.

Also the hints that place a restricted-party name in a country.
"""
from __future__ import annotations


_HEAVY = ["US", "JP", "GB", "DE", "KR", "TW", "IN", "SG", "AE", "SA", "MY", "IL", "NL", "FR", "CA", "AU"]
_LIGHT = ["BR", "MX", "PL", "VN", "TH", "ID", "TR", "CH", "SE", "ES", "IT", "FI", "NO", "DK", "IE", "BE",
          "AT", "NZ", "ZA", "QA", "KW", "PH", "CL", "AR", "CO", "PK", "KZ", "GR", "PT", "CZ", "RO", "HU",
          "EG", "BH", "OM", "JO", "LU"]
_RARE = {"CN": 0.004, "HK": 0.003, "KH": 0.0008, "RU": 0.001, "MO": 0.0005, "BY": 0.0003, "IR": 0.0002}
"""Rare destinations with their share of rows (about 1 % together)."""
_CHINA_LIKE = ("CN", "HK", "MO")


# SKU weight at the start and at the end of the shipped range (linear drift in between).
_SKU_WEIGHTS = {
    "NVIDIA-H100-SXM": (30, 6), "NVIDIA-H100-PCIE": (6, 1.5), "NVIDIA-H100-NVL": (4, 1.5),
    "NVIDIA-H200": (18, 12), "NVIDIA-H200-NVL": (4, 3), "NVIDIA-B100": (2, 1), "NVIDIA-B200": (8, 22),
    "NVIDIA-GB200": (4, 18), "NVIDIA-B300": (0, 8), "NVIDIA-GB300": (0, 8), "NVIDIA-A100": (12, 2),
    "NVIDIA-A800": (0.3, 0.1), "NVIDIA-H800-SXM": (0.3, 0.1), "NVIDIA-H800-PCIE": (0.2, 0.1),
    "NVIDIA-L40S": (9, 6), "NVIDIA-L4": (0.6, 0.5), "NVIDIA-H20": (0.5, 0.3), "NVIDIA-RTX-4090": (0.8, 0.5),
    "AMD-MI250X": (1, 0.3), "AMD-MI300X": (8, 5), "AMD-MI325X": (1, 4), "INTEL-GAUDI2": (1, 0.3),
    "INTEL-GAUDI3": (0.5, 2), "HUAWEI-ASCEND-910B": (0.04, 0.03), "HUAWEI-ASCEND-910C": (0.02, 0.04),
}
_SKU_DEFAULT_WEIGHT = (0.2, 0.2)
_CHINA_SKUS = (("NVIDIA-H20", 0.55), ("NVIDIA-H200", 0.10))
"""China-market SKUs and the share of China, Hong Kong and Macau rows each takes (the rest follow
the period mix): H20 and H200 lines to those destinations in every year of the range."""

_EXPORTERS = [
    ("Northbridge Systems Inc.", 30), ("Cascadia Server Corp.", 18), ("Redwood Compute Inc.", 14),
    ("Lakeshore Electronics Distribution LLC", 10), ("Granite Peak Integration Inc.", 8),
    ("Silver Creek Technologies Inc.", 6), ("Bayview Hardware Export LLC", 5),
    ("Pioneer Rack Solutions Inc.", 4), ("Summit Ridge Supply Co.", 3), ("Atlantic Channel Partners LLC", 1),
    (None, 1),
]

_EXPORT_HUBS = ("SG", "MY", "TW", "NL", "DE", "JP")
"""Countries rows are exported from when not the United States: exporter ``i`` ships from
hubs ``i`` and ``i + 1`` (modulo their number), never into the hub's own country."""
_PARENT_COUNTRIES = {"CN": 50, "US": 15, "HK": 10, "JP": 7, "GB": 5, "DE": 5, "KR": 4, "TW": 4}
"""Ultimate-parent headquarters drawn for the consignees that record one, by weight."""
_PARENT_LOCATIONS = {"SG": 8.0, "MY": 8.0, "TH": 4.0, "VN": 4.0, "ID": 4.0, "AE": 3.0}
"""Destinations whose consignees are more likely to record a parent (others weigh 1); most of
those parents are Chinese (:data:`_PARENT_CN_SHARE`)."""
_PARENT_CN_SHARE = 0.7

_WORD_A = """Nimbus Aurora Helix Quanta Vertex Zenith Cobalt Stratus Orion Meridian Lumen Pinnacle Tessera
Kestrel Solace Arbor Cirrus Nexa Polaris Sable Tidal Vantage Argent Boreal Cascade Delphi Ember Fathom
Granite Harbor Indigo Juniper Keystone Lattice Northwind Onyx Paragon Quill Radiant Summit Trident Umbra
Vela Willow Xenon Yarrow Zephyr Altair Beacon Crescent Dynamo Equinox Falcon Gemini Halcyon Ionic Jadeite
Krypton Lyra Mistral Nova Obsidian Prism Rigel""".split()
_WORD_B = """Compute Data Cloud AI Digital Neural Quantum Silicon Tensor Vector Photon Cyber Info Logic Matrix
Signal Grid Hyper Deep Smart Core Fusion Pixel Binary Cognitive Edge Flux Orbit Sigma Stream Node Wave""".split()
_WORD_C = """Systems Technologies Solutions Networks Labs Holdings Industries Services Infrastructure Dynamics
Analytics Ventures Partners Group Works Research Semiconductor Electronics Computing Capital Innovations
Integration Platforms Engineering""".split()
_WORD_D = ["", " International", " Global", " Asia Pacific", " Worldwide"]
_STREETS = """Harbor Station Park Lake River Hill Market Garden Cedar Maple Oak Pine Elm Spring Bridge Mill
Church Castle Forest Meadow Ocean Sunset Valley Ridge Innovation Science Technology Enterprise Commerce
Industrial Gateway Central Airport Canal University""".split()
_STREET_TYPES = ["Road", "Street", "Avenue", "Boulevard", "Drive", "Lane", "Way", "Park"]

_LEGAL_FORMS = {
    "US": ["Inc.", "LLC", "Corp."], "CA": ["Inc.", "Ltd."], "GB": ["Ltd", "Limited", "PLC"],
    "IE": ["Limited", "DAC"], "DE": ["GmbH", "AG"], "AT": ["GmbH"], "CH": ["AG", "GmbH", "SA"],
    "JP": ["K.K.", "Co., Ltd."], "KR": ["Co., Ltd."], "TW": ["Co., Ltd.", "Corp."],
    "CN": ["Co., Ltd.", "Limited"], "HK": ["Limited", "Co., Limited"], "MO": ["Limited"],
    "IN": ["Pvt. Ltd.", "Private Limited"], "SG": ["Pte. Ltd."], "MY": ["Sdn. Bhd."],
    "AE": ["FZ-LLC", "FZE", "LLC"], "SA": ["Co.", "LLC"], "QA": ["W.L.L."], "KW": ["W.L.L."],
    "BH": ["W.L.L."], "OM": ["LLC"], "IL": ["Ltd."], "NL": ["B.V.", "N.V."], "BE": ["NV", "BV"],
    "LU": ["S.A.", "S.a r.l."], "FR": ["SAS", "S.A."], "ES": ["S.L.", "S.A."], "PT": ["Lda.", "S.A."],
    "IT": ["S.r.l.", "S.p.A."], "AU": ["Pty Ltd"], "NZ": ["Limited"], "BR": ["Ltda.", "S.A."],
    "MX": ["S.A. de C.V."], "AR": ["S.A.", "S.R.L."], "CL": ["SpA", "S.A."], "CO": ["S.A.S."],
    "PL": ["Sp. z o.o."], "CZ": ["s.r.o."], "RO": ["S.R.L."], "HU": ["Kft."], "GR": ["S.A."],
    "VN": ["JSC", "Co., Ltd."], "TH": ["Co., Ltd."], "ID": ["Tbk"], "PH": ["Inc."], "TR": ["A.S."],
    "SE": ["AB"], "FI": ["Oy"], "NO": ["AS"], "DK": ["A/S"], "ZA": ["(Pty) Ltd"], "PK": ["(Pvt.) Ltd."],
    "KZ": ["LLP"], "RU": ["LLC", "JSC", "OOO"], "BY": ["LLC", "JSC"], "IR": ["Co."], "EG": ["S.A.E."],
    "JO": ["LLC"], "KH": ["Co., Ltd."],
}
_DEFAULT_LEGAL_FORMS = ["Ltd.", "LLC"]

_CITIES = {
    "US": ["San Jose", "Austin", "Ashburn", "Seattle", "Columbus", "Phoenix"], "JP": ["Tokyo", "Osaka"],
    "GB": ["London", "Manchester", "Cambridge"], "DE": ["Frankfurt", "Munich", "Berlin"],
    "KR": ["Seoul", "Pangyo", "Busan"], "TW": ["Taipei", "Hsinchu", "Taichung"],
    "IN": ["Bengaluru", "Mumbai", "Hyderabad", "Chennai"], "SG": ["Singapore"],
    "AE": ["Dubai", "Abu Dhabi"], "SA": ["Riyadh", "Jeddah", "Dammam"],
    "MY": ["Kuala Lumpur", "Johor Bahru", "Cyberjaya"],
    "IL": ["Tel Aviv", "Haifa"], "NL": ["Amsterdam", "Eindhoven"], "FR": ["Paris", "Lyon"],
    "CA": ["Toronto", "Montreal", "Vancouver"], "AU": ["Sydney", "Melbourne"], "BR": ["Sao Paulo", "Campinas"],
    "MX": ["Monterrey", "Queretaro"], "PL": ["Warsaw", "Krakow"], "VN": ["Hanoi", "Ho Chi Minh City"],
    "TH": ["Bangkok"], "ID": ["Jakarta", "Batam"], "TR": ["Istanbul", "Ankara"], "CH": ["Zurich", "Geneva"],
    "SE": ["Stockholm"], "ES": ["Madrid", "Barcelona"], "IT": ["Milan", "Rome"], "FI": ["Helsinki"],
    "NO": ["Oslo"], "DK": ["Copenhagen"], "IE": ["Dublin"], "BE": ["Brussels", "Antwerp"], "AT": ["Vienna"],
    "NZ": ["Auckland"], "ZA": ["Johannesburg", "Cape Town"], "QA": ["Doha"], "KW": ["Kuwait City"],
    "PH": ["Manila"], "CL": ["Santiago"], "AR": ["Buenos Aires"], "CO": ["Bogota"], "PK": ["Karachi", "Lahore"],
    "KZ": ["Almaty", "Astana"], "GR": ["Athens"], "PT": ["Lisbon"], "CZ": ["Prague"], "RO": ["Bucharest"],
    "HU": ["Budapest"], "EG": ["Cairo"], "BH": ["Manama"], "OM": ["Muscat"], "JO": ["Amman"],
    "LU": ["Luxembourg"], "CN": ["Shenzhen", "Beijing", "Shanghai", "Hangzhou"], "HK": ["Kowloon", "Hong Kong"],
    "KH": ["Phnom Penh"], "RU": ["Moscow", "Saint Petersburg"], "MO": ["Macau"], "BY": ["Minsk"],
    "IR": ["Tehran"], "UA": ["Kyiv"],
}
_COUNTRY_DISPLAY = {
    "US": "USA", "GB": "United Kingdom", "KR": "South Korea", "TW": "Taiwan", "IR": "Iran", "RU": "Russia",
    "VN": "Vietnam", "TR": "Turkey", "MO": "Macau", "AE": "United Arab Emirates", "CZ": "Czech Republic",
    "KP": "North Korea", "SY": "Syria", "VE": "Venezuela", "BO": "Bolivia", "LA": "Laos", "MD": "Moldova",
}
# Hints for the destination of a restricted-party name: (regular expression, ISO code), first hit wins.
_LISTED_HINTS = [
    (r"hong kong|kowloon", "HK"), (r"maca[uo]", "MO"),
    (r"beijing|shanghai|shenzhen|chengdu|guangzhou|wuhan|xi'?an|tianjin|hangzhou|nanjing|harbin|changsha|"
     r"sichuan|guangdong|jiangsu|shaanxi|hunan|hubei|zhejiang|huawei|\bprc\b|\bcetc\b", "CN"),
    (r"moscow|petersburg|kazan|novosibirsk|yekaterinburg|ryazan|\btula\b|\bural|gazprom|rostec", "RU"),
    (r"crimea", "UA"), (r"tehran|isfahan|shiraz|\biranian\b", "IR"), (r"minsk|belarus|\bkgb\b", "BY"),
    (r"dubai|sharjah|abu dhabi|ajman|\bfze\b|\bfzc\b|\bfzco\b|fz-llc", "AE"),
    (r"karachi|lahore|islamabad|rawalpindi", "PK"), (r"jordanian", "JO"),
    (r"\b(?:ooo|oao|zao|pjsc|ojsc|cjsc|jsc|npo|npp)\b|federal|scientific-production|research production|"
     r"design office|zavod|\bplant\b", "RU"), (r"co\.,? ltd", "CN"),
]
_LISTED_FALLBACK = {"CN": 0.4, "RU": 0.2, "HK": 0.12, "AE": 0.1, "IR": 0.06, "TR": 0.04, "SG": 0.04, "MY": 0.04}
