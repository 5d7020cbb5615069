"""Request and response models. Responses are ``<Thing>Public``; lists are ``{data, count}``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_ID = 2**53 - 1
"""Ids stay within JSON's safe integer range (JavaScript clients)."""
UserId = Annotated[int, Field(ge=0, le=MAX_ID, description="A user id.")]
ProductId = Annotated[int, Field(ge=0, le=MAX_ID, description="A product id.")]
EventType = Literal["view", "click", "favorite", "cart", "purchase"]
MAX_BATCH = 1000


def _storable(text: str) -> str:
    """Text every store keeps as given: valid UTF-8 (no lone surrogates), no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    return text


def _in_range(ts: datetime | None) -> datetime | None:
    if ts is not None and not 1970 <= ts.year <= 2200:
        raise ValueError("ts must be between the years 1970 and 2200")
    return ts


StoredText = Annotated[str, AfterValidator(_storable)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- errors
class ErrorPublic(BaseModel):
    """Every 4xx/5xx body."""

    error: str = Field(description="Machine-readable code, e.g. `unknown_id`, `invalid_request`.")
    detail: Any = Field(description="What is wrong: a message, or a list of field errors.")


# --------------------------------------------------------------- reasons
class ReasonPublic(BaseModel):
    type: str = Field(description="e.g. `friends_purchased`, `post_match`, `trending`.")
    text: str = Field(description="A sentence a person can read.")
    evidence: dict[str, Any] = Field(default_factory=dict)
    source: str = ""


# -------------------------------------------------------------- products
class ProductPublic(BaseModel):
    product_id: int
    title: str
    price: float | None
    shop_id: int
    shop_name: str | None = None
    category_path: str
    brand: str | None = None


class ProductDetailPublic(ProductPublic):
    description: str


class RecommendationPublic(BaseModel):
    rank: int
    product: ProductPublic
    score: float
    source: str
    reasons: list[ReasonPublic]


class RecommendationListPublic(BaseModel):
    user_id: int
    model_version: str
    data: list[RecommendationPublic]
    count: int


class SimilarProductPublic(BaseModel):
    rank: int
    product: ProductPublic
    score: float
    reasons: list[ReasonPublic]


class SimilarProductListPublic(BaseModel):
    product_id: int
    data: list[SimilarProductPublic]
    count: int


# ----------------------------------------------------------------- users
class UserPublic(BaseModel):
    user_id: int
    handle: str
    gender: str | None = None
    age_band: str | None = None
    city_tier: int | None = None
    device: str | None = None
    is_kol: bool
    signup_ts: datetime | None = None
    following_count: int


class FolloweePublic(BaseModel):
    user_id: int
    handle: str
    is_kol: bool


class FollowingListPublic(BaseModel):
    user_id: int
    data: list[FolloweePublic]
    count: int = Field(description="Items in `data`.")
    total: int = Field(description="People followed in all.")
    limit: int
    offset: int


class ShareTargetPublic(BaseModel):
    user_id: int
    handle: str
    score: float
    reasons: list[ReasonPublic]


class ShareTargetListPublic(BaseModel):
    user_id: int
    product_id: int
    data: list[ShareTargetPublic]
    count: int


# ---------------------------------------------------------------- groups
class GroupRecommendationRequest(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["user_ids"], "not": {"required": ["group_id"]}},
                {"required": ["group_id"], "not": {"required": ["user_ids"]}},
            ]
        },
    )

    user_ids: list[UserId] | None = Field(
        None, min_length=1, max_length=100, description="Members (or give `group_id`)."
    )
    group_id: int | None = Field(None, ge=0, le=MAX_ID, description="A dataset group.")
    k: int = Field(10, ge=1, le=100)
    strategy: Literal["average", "least_misery"] = "average"

    @model_validator(mode="after")
    def _one_of(self) -> GroupRecommendationRequest:
        if (self.user_ids is None) == (self.group_id is None):
            raise ValueError("give exactly one of user_ids and group_id")
        return self


class MemberScorePublic(BaseModel):
    user_id: int
    score: float


class GroupRecommendationPublic(SimilarProductPublic):
    member_scores: list[MemberScorePublic]


class GroupRecommendationListPublic(BaseModel):
    user_ids: list[int]
    group_id: int | None
    strategy: str
    data: list[GroupRecommendationPublic]
    count: int


# ---------------------------------------------------------------- writes
class PostCreate(Strict):
    user_id: UserId
    text: StoredText = Field(min_length=1, max_length=2000)
    hashtags: list[Annotated[StoredText, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=20,
        description="Without `#`. Weibo-style `#topic#` in the text are added too.",
    )
    mentions: list[UserId] = Field(default_factory=list, max_length=20)
    product_id: ProductId | None = None
    repost_of: int | None = Field(None, ge=0, le=MAX_ID)
    k: int = Field(10, ge=1, le=100, description="Size of the refreshed recommendations.")


class PostCreatedPublic(BaseModel):
    post_id: int
    seq: int
    duplicate: bool = Field(description="True when this idempotency key was seen before.")
    recommendations: RecommendationListPublic


class EventIn(Strict):
    user_id: UserId
    product_id: ProductId
    event: EventType
    ts: Annotated[datetime | None, AfterValidator(_in_range)] = Field(
        None, description="When it happened (default: now; years 1970-2200)."
    )
    via_post_id: int | None = Field(None, ge=0, le=MAX_ID)


class EventBatch(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventsAcceptedPublic(BaseModel):
    seq: int
    accepted: int
    duplicate: bool


class FollowChange(Strict):
    follower_id: UserId
    followee_id: UserId


class FollowPublic(BaseModel):
    seq: int
    op: Literal["follow", "unfollow"]
    follower_id: int
    followee_id: int
    duplicate: bool


# ----------------------------------------------------------------- admin
class ReloadRequest(Strict):
    model_dir: str | None = Field(None, max_length=4096)
    dataset_dir: str | None = Field(None, max_length=4096)


class ReloadPublic(BaseModel):
    model_version: str
    previous_version: str
    model_dir: str
    loaded_at: datetime
    replayed: int


class HealthPublic(BaseModel):
    status: str


class ReadyPublic(BaseModel):
    status: str
    model_version: str | None = None
    store: str
    worker_pid: int
