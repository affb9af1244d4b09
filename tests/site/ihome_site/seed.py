"""What the site's SQL holds before a test: the areas, and users who registered on the Flask site
before the function existed (iHome's own rows, with a werkzeug password hash), with their houses.

USERS is the default: user #1 is a landlord who passed the real-name check and has a house, user
#2 a plain user. A later test run can seed others (e.g. users with houses to import into the
function) by overriding the `seed_users` fixture in tests/site/conftest.py with a list of the
same shape."""
from . import db
from .models import Area, House, User

AREAS = ["东城区", "西城区", "朝阳区", "海淀区"]

USERS = [
    {"mobile": "13800000001", "name": "房东老王", "password": "laowang-secret-1",
     "real_name": "王建国", "id_card": "110101198001010017",
     "houses": [{"title": "朝阳公园旁一居室", "area": "朝阳区", "price": 300}]},
    {"mobile": "13800000002", "name": "小李", "password": "xiaoli-secret-2"},
]

HOUSE_DEFAULTS = {"address": "北京", "room_count": 1, "acreage": 40, "unit": "一室一厅",
                  "capacity": 2, "beds": "双人床", "deposit": 500, "min_days": 1, "max_days": 0}


def seed(app, users=USERS):
    """Creates the tables and the rows; returns {mobile: user id}."""
    with app.app_context():
        db.create_all()
        areas = {}
        for name in AREAS:
            area = Area(name=name)
            db.session.add(area)
            areas[name] = area
        ids = {}
        for spec in users:
            user = User(name=spec["name"], mobile=spec["mobile"],
                        real_name=spec.get("real_name"), id_card=spec.get("id_card"))
            user.password = spec["password"]
            db.session.add(user)
            for house in spec.get("houses", []):
                fields = {**HOUSE_DEFAULTS, **house}
                fields["area"] = areas[fields["area"]]
                fields["price"] *= 100
                fields["deposit"] *= 100
                db.session.add(House(user=user, **fields))
            db.session.flush()
            ids[spec["mobile"]] = user.id
        db.session.commit()
        return ids
