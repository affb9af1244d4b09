"""The API views of iHome that key on the logged-in user (passport.py, profile.py, houses.py,
orders.py), written here in their shape: JSON in, {"errno", "errmsg", "data"} out, the user from
session["user_id"] through @login_required (utils/commons.py). Unlike the originals, bad input
gets PARAMERR rather than a 500, and a real-name check that changes nothing says so."""
import datetime
import functools
import re

from flask import Blueprint, current_app, g, jsonify, request, session
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import RET, db
from .models import Area, House, Order, User

api = Blueprint("api_1_0", __name__)
ID_CARD = re.compile(r"[0-9]{17}[0-9Xx]")


def login_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user_id = session.get("user_id")
        if user_id is None:
            return jsonify(errno=RET.SESSIONERR, errmsg="用户未登录")
        g.user_id = user_id
        return view(*args, **kwargs)

    return wrapper


def json_body():
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def text(body, key, longest):
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > longest:
        return None
    return value.strip()


def whole(body, key, least=0):
    value = body.get(key)
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if least <= number <= 10**8 else None


def db_failed(e, what):
    db.session.rollback()
    current_app.logger.error("%s: %s", what, type(e).__name__)
    return jsonify(errno=RET.DBERR, errmsg="数据库异常")


def saved(row, what, key):
    """Adds `row` and commits; answers its id under `key`, or iHome's error answer."""
    try:
        db.session.add(row)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return jsonify(errno=RET.NODATA, errmsg="无效操作")
    except SQLAlchemyError as e:
        return db_failed(e, what)
    return jsonify(errno=RET.OK, errmsg="OK", data={key: row.id})


# passport.py: login state and logout
@api.get("/session")
def check_login():
    name = session.get("name")
    if session.get("user_id") is None or name is None:
        return jsonify(errno=RET.SESSIONERR, errmsg="false")
    return jsonify(errno=RET.OK, errmsg="true", data={"name": name})


@api.delete("/session")
def logout():
    token = session.get("csrf_token")  # iHome keeps the CSRF token across a logout
    session.clear()
    if token:
        session["csrf_token"] = token
    return jsonify(errno=RET.OK, errmsg="OK")


# profile.py
def own_user(serialise):
    """The logged-in user's row, as serialise(user) makes it: iHome's User.query.get(user_id)."""
    try:
        user = db.session.get(User, g.user_id)
    except SQLAlchemyError as e:
        return db_failed(e, "user lookup")
    if user is None:
        return jsonify(errno=RET.NODATA, errmsg="无效操作")
    return jsonify(errno=RET.OK, errmsg="OK", data=serialise(user))


@api.get("/user")
@login_required
def get_user_profile():
    return own_user(User.to_dict)


@api.put("/users/name")
@login_required
def change_user_name():
    body = json_body()
    name = body and text(body, "name", 32)
    if not name:
        return jsonify(errno=RET.PARAMERR, errmsg="参数错误")
    try:
        updated = User.query.filter_by(id=g.user_id).update({"name": name})
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return jsonify(errno=RET.DATAEXIST, errmsg="用户名已存在")
    except SQLAlchemyError as e:
        return db_failed(e, "rename")
    if not updated:
        return jsonify(errno=RET.NODATA, errmsg="无效操作")
    session["name"] = name
    return jsonify(errno=RET.OK, errmsg="OK", data={"name": name})


@api.get("/users/auth")
@login_required
def get_user_auth():
    return own_user(User.auth_to_dict)


@api.post("/users/auth")
@login_required
def set_user_auth():
    body = json_body()
    real_name = body and text(body, "real_name", 32)
    id_card = body and text(body, "id_card", 18)
    if not real_name or not id_card or not ID_CARD.fullmatch(id_card):
        return jsonify(errno=RET.PARAMERR, errmsg="参数错误")
    try:
        updated = User.query.filter_by(id=g.user_id, real_name=None, id_card=None).update(
            {"real_name": real_name, "id_card": id_card})
        db.session.commit()
    except SQLAlchemyError as e:
        return db_failed(e, "real-name")
    if not updated:
        return jsonify(errno=RET.DATAERR, errmsg="已实名认证或用户不存在")
    return jsonify(errno=RET.OK, errmsg="OK")


# houses.py
@api.get("/areas")
def get_area_info():
    try:
        areas = Area.query.order_by(Area.id).all()
    except SQLAlchemyError as e:
        return db_failed(e, "areas")
    return jsonify(errno=RET.OK, errmsg="OK", data=[{"aid": a.id, "aname": a.name} for a in areas])


@api.post("/houses/info")
@login_required
def save_house_info():
    body = json_body() or {}
    fields = {
        "title": text(body, "title", 64), "address": text(body, "address", 512),
        "unit": text(body, "unit", 32), "beds": text(body, "beds", 64),
        "area_id": whole(body, "area_id", 1), "room_count": whole(body, "room_count", 1),
        "acreage": whole(body, "acreage", 1), "capacity": whole(body, "capacity", 1),
        "min_days": whole(body, "min_days", 1), "max_days": whole(body, "max_days"),
        "price": whole(body, "price", 0), "deposit": whole(body, "deposit", 0),
    }
    if any(v is None for v in fields.values()):
        return jsonify(errno=RET.PARAMERR, errmsg="参数不完整")
    if fields["max_days"] and fields["max_days"] < fields["min_days"]:
        return jsonify(errno=RET.PARAMERR, errmsg="参数错误")
    fields["price"] *= 100  # yuan in, fen stored, as iHome
    fields["deposit"] *= 100
    try:
        area = db.session.get(Area, fields["area_id"])
    except SQLAlchemyError as e:
        return db_failed(e, "area")
    if area is None:
        return jsonify(errno=RET.NODATA, errmsg="城区不存在")
    return saved(House(user_id=g.user_id, **fields), "house", "house_id")


@api.get("/user/houses")
@login_required
def get_user_houses():
    try:
        houses = House.query.filter_by(user_id=g.user_id).order_by(House.id).all()
    except SQLAlchemyError as e:
        return db_failed(e, "my houses")
    return jsonify(errno=RET.OK, errmsg="OK", data={"houses": [h.to_basic_dict() for h in houses]})


# orders.py
def day(value):
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%d")
    except (TypeError, ValueError):
        return None


@api.post("/orders")
@login_required
def save_order():
    body = json_body() or {}
    house_id = whole(body, "house_id", 1)
    start, end = day(body.get("start_date")), day(body.get("end_date"))
    if house_id is None or start is None or end is None or end <= start:
        return jsonify(errno=RET.PARAMERR, errmsg="参数错误")
    try:
        house = db.session.get(House, house_id)
    except SQLAlchemyError as e:
        return db_failed(e, "house")
    if house is None:
        return jsonify(errno=RET.NODATA, errmsg="房屋不存在")
    if house.user_id == g.user_id:
        return jsonify(errno=RET.ROLEERR, errmsg="不能预订自己的房屋")
    days = (end - start).days
    return saved(Order(user_id=g.user_id, house_id=house_id, begin_date=start, end_date=end,
                       days=days, house_price=house.price, amount=days * house.price),
                 "order", "order_id")


@api.get("/user/orders")
@login_required
def get_user_orders():
    role = request.args.get("role", "custom")
    if role not in ("custom", "landlord"):
        return jsonify(errno=RET.PARAMERR, errmsg="参数错误")
    try:
        query = Order.query.filter_by(user_id=g.user_id) if role == "custom" else \
            Order.query.join(House).filter(House.user_id == g.user_id)
        orders = query.order_by(Order.id).all()
    except SQLAlchemyError as e:
        return db_failed(e, "orders")
    return jsonify(errno=RET.OK, errmsg="OK", data={"orders": [o.to_dict() for o in orders]})
