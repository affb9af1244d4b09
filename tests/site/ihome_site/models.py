"""The iHome tables as the Flask site has them: users keyed by an integer id, houses and orders
pointing at them by foreign key. Shaped after iHome's models.py (fewer columns: no avatar,
facilities or images)."""
from datetime import datetime

from werkzeug.security import check_password_hash, generate_password_hash

from . import db


class BaseModel:
    create_time = db.Column(db.DateTime, default=datetime.now)
    update_time = db.Column(db.DateTime, default=datetime.now, onupdate=datetime.now)


class User(BaseModel, db.Model):
    __tablename__ = "ih_user_profile"
    # SQLite would otherwise give a deleted user's id to the next new one (contrib/flask).
    __table_args__ = {"sqlite_autoincrement": True}

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(32), unique=True, nullable=False)
    # iHome had 128; werkzeug 3's scrypt hashes are ~162 characters, which strict MySQL refuses
    # (the seed baseline widened it the same way).
    password_hash = db.Column(db.String(255), nullable=False)
    mobile = db.Column(db.String(11), unique=True, nullable=False)
    real_name = db.Column(db.String(32))
    id_card = db.Column(db.String(20))
    houses = db.relationship("House", backref="user")
    orders = db.relationship("Order", backref="user")

    @property
    def password(self):
        raise AttributeError("write-only")

    @password.setter
    def password(self, value):
        self.password_hash = generate_password_hash(value)

    def check_password(self, value):
        return check_password_hash(self.password_hash, value)

    def to_dict(self):
        return {"user_id": self.id, "name": self.name, "mobile": self.mobile,
                "create_time": self.create_time and f"{self.create_time:%Y-%m-%d %H:%M:%S}"}

    def auth_to_dict(self):
        return {"user_id": self.id, "real_name": self.real_name, "id_card": self.id_card}


class Area(BaseModel, db.Model):
    __tablename__ = "ih_area_info"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(32), nullable=False)
    houses = db.relationship("House", backref="area")


class House(BaseModel, db.Model):
    __tablename__ = "ih_house_info"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("ih_user_profile.id"), nullable=False)
    area_id = db.Column(db.Integer, db.ForeignKey("ih_area_info.id"), nullable=False)
    title = db.Column(db.String(64), nullable=False)
    price = db.Column(db.Integer, default=0)  # fen
    address = db.Column(db.String(512), default="")
    room_count = db.Column(db.Integer, default=1)
    acreage = db.Column(db.Integer, default=0)
    unit = db.Column(db.String(32), default="")
    capacity = db.Column(db.Integer, default=1)
    beds = db.Column(db.String(64), default="")
    deposit = db.Column(db.Integer, default=0)  # fen
    min_days = db.Column(db.Integer, default=1)
    max_days = db.Column(db.Integer, default=0)  # 0: no limit
    order_count = db.Column(db.Integer, default=0)
    orders = db.relationship("Order", backref="house")

    def to_basic_dict(self):
        return {"house_id": self.id, "user_id": self.user_id, "title": self.title,
                "price": self.price, "area_name": self.area.name, "address": self.address,
                "room_count": self.room_count, "order_count": self.order_count}


class Order(BaseModel, db.Model):
    __tablename__ = "ih_order_info"

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("ih_user_profile.id"), nullable=False)
    house_id = db.Column(db.Integer, db.ForeignKey("ih_house_info.id"), nullable=False)
    begin_date = db.Column(db.DateTime, nullable=False)
    end_date = db.Column(db.DateTime, nullable=False)
    days = db.Column(db.Integer, nullable=False)
    house_price = db.Column(db.Integer, nullable=False)
    amount = db.Column(db.Integer, nullable=False)
    status = db.Column(db.Enum("WAIT_ACCEPT", "WAIT_PAYMENT", "PAID", "WAIT_COMMENT", "COMPLETE",
                               "CANCELED", "REJECTED"), default="WAIT_ACCEPT", index=True)
    comment = db.Column(db.Text)

    def to_dict(self):
        return {"order_id": self.id, "house_id": self.house_id, "title": self.house.title,
                "start_date": self.begin_date.strftime("%Y-%m-%d"),
                "end_date": self.end_date.strftime("%Y-%m-%d"), "days": self.days,
                "amount": self.amount, "status": self.status}
