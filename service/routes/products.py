"""Products: details and similar products."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.deps import HolderDep
from service.errors import ERROR_RESPONSES
from service.schemas import MAX_ID, ProductDetailPublic, SimilarProductListPublic

router = APIRouter(prefix="/v1/products", tags=["products"], responses=ERROR_RESPONSES)

ProductIdPath = Annotated[int, Path(ge=0, le=MAX_ID, description="A product id.")]


@router.get("/{product_id}", response_model=ProductDetailPublic)
def read_product(product_id: ProductIdPath, holder: HolderDep) -> dict:
    """A product's details."""
    return holder.catalog.product(product_id, description=True)


@router.get("/{product_id}/similar", response_model=SimilarProductListPublic)
def read_similar_products(
    product_id: ProductIdPath,
    holder: HolderDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict:
    """Products like this one (similar text, bought together)."""
    data = holder.similar(product_id, k)
    return {"product_id": product_id, "data": data, "count": len(data)}
